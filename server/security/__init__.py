"""Who is calling and what they may do: TLS, tokens, scopes, tenants, rate limits, audit."""
