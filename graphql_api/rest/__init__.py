"""The REST transport: the seed's six routes on /conversations and the three of a streamed
answer, beside GraphQL, on the same rules and operations (graphql_api.domain) and the same
authentication."""
