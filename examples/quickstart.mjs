// Node 18+ (global fetch). CLIENT_ID and CLIENT_SECRET are printed by `python3 dev.py up`.
const AUTH = process.env.AUTH ?? 'http://127.0.0.1:5000';
const API = process.env.API ?? 'http://127.0.0.1:5001';

async function getToken() {
  const response = await fetch(`${AUTH}/oauth/token`, {
    method: 'POST',
    headers: {
      'Authorization': 'Basic ' + btoa(`${process.env.CLIENT_ID}:${process.env.CLIENT_SECRET}`),
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read:users' }),
  });
  if (!response.ok) throw new Error(`token request failed: ${response.status}`);
  return (await response.json()).access_token;
}

async function getUsers(token) {
  const response = await fetch(`${API}/v1/users`, {
    headers: { 'Authorization': `Bearer ${token}` },
  });
  if (response.status === 429) {
    const seconds = Number(response.headers.get('Retry-After'));
    throw new Error(`rate limited: retry in ${seconds} s`);
  }
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.error.code}: ${body.error.message}`); // TOKEN_EXPIRED: get a new token
  console.error(`${response.headers.get('X-RateLimit-Remaining')} requests left before the rate limit`);
  return body.data;
}

const users = await getUsers(await getToken());
console.log(JSON.stringify(users));
