"""`python -m benchmarks` (or `make bench`): the service's cost, measured end to end on loopback.

Direct storage calls (the floor), a plain REST baseline and the GraphQL service make the same
DynamoDB calls over the same seeded data; the report compares them per scenario and shows that
a page costs the same whatever the history behind it. See docs/benchmarks/RESULTS.md.
"""
