"""The REST transport: the seed's six routes on /conversations, beside GraphQL, on the same
rules and operations (graphql_api.domain) and the same authentication."""
