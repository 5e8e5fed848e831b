"""The OAuth 2.0 protocol on Authlib: the server's feature list, grants, tokens and keys."""
