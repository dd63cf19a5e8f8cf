"""Authentication and authorisation at the edge: principals, SMART scopes, credentials, rate limits."""
