"""What both shapes' Valkey share: an AUTH token (or RBAC password) generated in Secrets Manager."""

from __future__ import annotations

from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

# Valkey accepts 16 to 128 printable characters but refuses some punctuation (@, ", /), and the
# token also rides in redis:// URLs where others would need escaping: letters and digits only,
# 64 of them (~380 bits).
TOKEN_LENGTH = 64


def auth_token(scope: Construct, construct_id: str, *, description: str) -> secretsmanager.Secret:
    return secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=TOKEN_LENGTH, exclude_punctuation=True, include_space=False
        ),
    )
