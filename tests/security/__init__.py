"""RFC 9700 (OAuth 2.0 Security Best Current Practice) as tests: one test, or a small group, per
threat of its §4 that applies to this server; each docstring names its section.

Map (section → module):

- §4.1 Insufficient Redirect URI Validation → test_redirects.py
- §4.2 Credential Leakage via Referer Headers → test_browser_pages.py
- §4.3 Credential Leakage via Browser History → test_browser_pages.py (no-store on the pages and
  redirects carrying a code; §4.3.2, access tokens in the history, cannot happen: no implicit grant)
- §4.4 Mix-Up Attacks → test_code_flow.py (RFC 9207 `iss`)
- §4.5 Authorization Code Injection → test_code_flow.py
- §4.6 Access Token Injection → test_code_flow.py (no token in the front channel) and
  test_access_tokens.py (the resource side refuses what is not ours and for it)
- §4.7 Cross-Site Request Forgery → test_browser_pages.py (consent, sign-in, logout forms; `state`)
- §4.8 PKCE Downgrade Attack → test_code_flow.py
- §4.9 Access Token Leakage at the Resource Server, §4.10 Misuse of Stolen Access Tokens →
  test_access_tokens.py (audience restriction, §4.10.2). §4.10.1 sender-constrained tokens (DPoP,
  mTLS) are not implemented: bearer tokens only, audience-restricted and short-lived.
- §4.11 Open Redirection → test_redirects.py (authorization endpoint and RP-initiated logout).
  Not prevented (§4.11.2, attacks 1-3): a client whose owner registered a phishing URI can have the
  browser sent there with an error (bad scope, prompt=none) or after Deny, as RFC 6749 §4.1.2.1 and
  OpenID Connect ask. Any account may register apps, so closing this needs a decision on which
  redirect URIs are trusted (review, or an interstitial before redirecting to an unreviewed app).
- §4.12 307 Redirect → test_browser_pages.py
- §4.13 TLS Terminating Reverse Proxies → test_browser_pages.py (forwarded headers are honoured
  only from AUTHSERVER_TRUSTED_PROXIES proxies)
- §4.14 Refresh Token Protection → test_tokens.py
- §4.15 Client Impersonating Resource Owner → test_tokens.py
- §4.16 Clickjacking → test_browser_pages.py
- §4.17 Attacks on In-Browser Communication Flows: does not apply, the server has no postMessage
  or web_message response mode; every authorization response is a top-level redirect.
- §2.1.2 Implicit Grant, §2.4 Resource Owner Password Credentials Grant → test_code_flow.py
  (both refused)
- §2.5 Client Authentication and brute force of secrets and passwords → test_brute_force.py
"""
