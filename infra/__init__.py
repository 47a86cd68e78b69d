"""The CDK app that deploys the service: `make synth` writes both shapes to infra/cdk.out/.

Two stacks, each complete on its own (table, content bucket, Cognito, alarms):

- `ChatHistoryServerless` (serverless.py): the app in AWS Lambda behind an API Gateway HTTP API
  with a Cognito JWT authorizer, the seed's shape.
- `ChatHistoryContainer` (container.py): the Docker image on ECS Fargate behind an ALB, with
  ElastiCache (Valkey) for subscriptions fan-out.
"""
