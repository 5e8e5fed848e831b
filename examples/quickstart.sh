# Get an access token for the demo client (client_credentials), then call the API with it.
# CLIENT_ID and CLIENT_SECRET are printed by `python3 dev.py up`.
AUTH=${AUTH:-http://127.0.0.1:5000}
API=${API:-http://127.0.0.1:5001}

TOKEN=$(curl -s -u "$CLIENT_ID:$CLIENT_SECRET" "$AUTH/oauth/token" \
  -d grant_type=client_credentials -d scope=read:users |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

curl -s -H "Authorization: Bearer $TOKEN" "$API/v1/users"
