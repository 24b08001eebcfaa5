// Local stand-ins for the push providers, for t/7x (issue 22): Expo's push
// service (send, receipts), FCM HTTP v1 (the OAuth2 token endpoint and
// messages:send), APNs (HTTP/2 over TLS only, as Apple's) and an SMS
// webhook. Each checks what the real one would refuse (a JWT's signature
// and claims, the bearer token, the path, the headers) and records what it
// accepted; a control API lets a test break a provider and read the log.
//
//   node mock-providers.js --dir DIR --cert C --key K \
//        --fcm-pub FCM_PUB.pem --apns-pub APNS_PUB.pem
//
// writes DIR/ports.json ({"http": n, "apns": n}) once listening.
//
// Control (on the http port):
//   GET  /_mock/log              [{provider, token, push_id, body, headers,
//                                  http, t}] in the order accepted
//   GET  /_mock/stats            {tokens_issued, requests: {provider: n},
//                                 refused: {provider: n}}
//   POST /_mock/config           {"down": {"apns": true, ...},
//                                 "dead": ["token", ...],
//                                 "dead_receipt": ["token", ...],
//                                 "retry_after": 1}
'use strict';

const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const crypto = require('crypto');

const args = {};
for (let i = 2; i < process.argv.length; i += 2)
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const fcmPub = crypto.createPublicKey(fs.readFileSync(args['fcm-pub']));
const apnsPub = crypto.createPublicKey(fs.readFileSync(args['apns-pub']));

const state = {
    log: [],
    down: {},
    dead: new Set(),
    deadReceipt: new Set(),
    retryAfter: 1,
    tokens: new Set(),
    tokensIssued: 0,
    requests: {},
    refused: {},
    tickets: {},      // ticket id -> token
    nextTicket: 1,
};

function count(what, provider) {
    state[what][provider] = (state[what][provider] || 0) + 1;
}

function b64url(buf) {
    return Buffer.from(buf, 'base64url');
}

// a JWT's parts, checked with key; null when it does not verify
function verifyJwt(jwt, key, alg) {
    const parts = (jwt || '').split('.');
    if (parts.length !== 3) return null;
    let header, claims;
    try {
        header = JSON.parse(b64url(parts[0]).toString());
        claims = JSON.parse(b64url(parts[1]).toString());
    } catch (e) { return null; }
    if (header.alg !== alg) return null;
    const ok = crypto.verify('sha256', Buffer.from(parts[0] + '.' + parts[1]),
        alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
        b64url(parts[2]));
    return ok ? { header, claims } : null;
}

function json(res, status, body, headers) {
    res.writeHead(status, Object.assign({ 'content-type': 'application/json' },
                                        headers || {}));
    res.end(body === undefined ? '' : JSON.stringify(body));
}

function readBody(req, cb) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => cb(Buffer.concat(chunks).toString()));
}

function record(provider, token, body, headers, httpVersion) {
    let pushId = null;
    try {
        const b = typeof body === 'string' ? JSON.parse(body) : body;
        pushId = b.push_id ?? b.data?.push_id ?? b.message?.data?.push_id ?? null;
    } catch (e) { /* not JSON */ }
    state.log.push({ provider, token, push_id: pushId === null ? null : Number(pushId),
                     body: typeof body === 'string' ? body : JSON.stringify(body),
                     headers, http: httpVersion, t: Date.now() });
}

function down(provider, res) {
    if (!state.down[provider]) return false;
    count('refused', provider);
    json(res, 503, provider === 'apns' ? { reason: 'ServiceUnavailable' }
                                       : { error: 'unavailable' },
         { 'retry-after': String(state.retryAfter) });
    return true;
}

// Expo: POST /expo/send [messages], POST /expo/receipts {ids}
function expoSend(req, res, body) {
    count('requests', 'expo');
    if (down('expo', res)) return;
    let msgs;
    try { msgs = JSON.parse(body); } catch (e) { return json(res, 400, { errors: [{ code: 'VALIDATION_ERROR' }] }); }
    if (!Array.isArray(msgs)) msgs = [msgs];
    if (msgs.length > 100)
        return json(res, 400, { errors: [{ code: 'PUSH_TOO_MANY_NOTIFICATIONS' }] });
    const data = msgs.map((m) => {
        if (!/^Expo(nent)?PushToken\[.+\]$/.test(m.to || ''))
            return { status: 'error', message: 'not a token', details: { error: 'InvalidCredentials' } };
        if (state.dead.has(m.to))
            return { status: 'error', message: `"${m.to}" is not a registered push notification recipient`,
                     details: { error: 'DeviceNotRegistered' } };
        const id = 'ticket-' + state.nextTicket++;
        state.tickets[id] = m.to;
        record('expo', m.to, m, { batch: msgs.length }, req.httpVersion);
        return { status: 'ok', id };
    });
    json(res, 200, { data });
}

function expoReceipts(req, res, body) {
    count('requests', 'expo_receipts');
    const ids = JSON.parse(body).ids || [];
    const data = {};
    for (const id of ids) {
        const token = state.tickets[id];
        if (!token) continue;
        data[id] = state.deadReceipt.has(token)
            ? { status: 'error', message: 'gone', details: { error: 'DeviceNotRegistered' } }
            : { status: 'ok' };
    }
    json(res, 200, { data });
}

// FCM: POST /fcm/token (form), POST /fcm/v1/projects/<p>/messages:send
function fcmToken(req, res, body) {
    count('requests', 'fcm_token');
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
        return json(res, 400, { error: 'unsupported_grant_type' });
    const jwt = verifyJwt(form.get('assertion'), fcmPub, 'RS256');
    const now = Date.now() / 1000;
    if (!jwt || jwt.claims.iss !== 'pushd@famcall-test.iam.gserviceaccount.com'
        || jwt.claims.scope !== 'https://www.googleapis.com/auth/firebase.messaging'
        || !String(jwt.claims.aud).endsWith('/fcm/token')
        || !(jwt.claims.exp > now) || !(jwt.claims.iat <= now + 5))
        return json(res, 400, { error: 'invalid_grant' });
    const token = 'ya29.mock-' + crypto.randomBytes(8).toString('hex');
    state.tokens.add(token);
    state.tokensIssued++;
    json(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
}

function fcmSend(req, res, body, project) {
    count('requests', 'fcm');
    if (down('fcm', res)) return;
    const auth = (req.headers.authorization || '').replace(/^Bearer /, '');
    if (!state.tokens.has(auth))
        return json(res, 401, { error: { code: 401, status: 'UNAUTHENTICATED' } });
    if (project !== 'famcall-test')
        return json(res, 404, { error: { code: 404, status: 'NOT_FOUND', message: 'no such project' } });
    let m;
    try { m = JSON.parse(body).message; } catch (e) { m = null; }
    if (!m || !m.token)
        return json(res, 400, { error: { code: 400, status: 'INVALID_ARGUMENT' } });
    for (const v of Object.values(m.data || {}))
        if (typeof v !== 'string')
            return json(res, 400, { error: { code: 400, status: 'INVALID_ARGUMENT',
                                             message: 'data values must be strings' } });
    if (state.dead.has(m.token))
        return json(res, 404, { error: { code: 404, status: 'NOT_FOUND', message: 'Requested entity was not found.',
            details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError',
                        errorCode: 'UNREGISTERED' }] } });
    record('fcm', m.token, m, {}, req.httpVersion);
    json(res, 200, { name: `projects/${project}/messages/${crypto.randomBytes(6).toString('hex')}` });
}

function webhook(req, res, body) {
    count('requests', 'webhook');
    if (down('webhook', res)) return;
    let m;
    try { m = JSON.parse(body); } catch (e) { return json(res, 400, {}); }
    if (!m.to || !m.body) return json(res, 400, {});
    record('webhook', m.to, m, {}, req.httpVersion);
    json(res, 200, { queued: true });
}

const server = http.createServer((req, res) => {
    readBody(req, (body) => {
        const url = req.url;
        if (req.method === 'GET' && url === '/_mock/log') return json(res, 200, state.log);
        if (req.method === 'GET' && url === '/_mock/stats')
            return json(res, 200, { tokens_issued: state.tokensIssued,
                                    requests: state.requests, refused: state.refused });
        if (req.method === 'POST' && url === '/_mock/config') {
            const c = JSON.parse(body);
            if (c.down) state.down = c.down;
            if (c.dead) state.dead = new Set(c.dead);
            if (c.dead_receipt) state.deadReceipt = new Set(c.dead_receipt);
            if (c.retry_after !== undefined) state.retryAfter = c.retry_after;
            return json(res, 200, { ok: true });
        }
        if (req.method !== 'POST') return json(res, 405, {});
        if (url === '/expo/send') return expoSend(req, res, body);
        if (url === '/expo/receipts') return expoReceipts(req, res, body);
        if (url === '/fcm/token') return fcmToken(req, res, body);
        let m = url.match(/^\/fcm\/v1\/projects\/([^/]+)\/messages:send$/);
        if (m) return fcmSend(req, res, body, m[1]);
        if (url === '/webhook') return webhook(req, res, body);
        json(res, 404, {});
    });
});

// APNs: HTTP/2 only (no HTTP/1.1 fallback), TLS
const apns = http2.createSecureServer({
    cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key), allowHTTP1: false,
});

const TOPIC = 'org.famcall.test';

apns.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const reply = (status, obj, extra) => {
            stream.respond(Object.assign({ ':status': status, 'apns-id': crypto.randomUUID() }, extra || {}));
            stream.end(obj ? JSON.stringify(obj) : '');
        };
        count('requests', 'apns');
        if (state.down.apns) {
            count('refused', 'apns');
            return reply(503, { reason: 'ServiceUnavailable' }, { 'retry-after': String(state.retryAfter) });
        }
        const m = (headers[':path'] || '').match(/^\/3\/device\/([0-9a-fA-F]+)$/);
        if (headers[':method'] !== 'POST' || !m) return reply(404, { reason: 'BadPath' });
        const auth = (headers.authorization || '').replace(/^bearer /, '');
        const jwt = verifyJwt(auth, apnsPub, 'ES256');
        if (!jwt || jwt.header.kid !== 'KEYID12345' || jwt.claims.iss !== 'TEAMID1234')
            return reply(403, { reason: 'InvalidProviderToken' });
        if (Date.now() / 1000 - jwt.claims.iat > 3600)
            return reply(403, { reason: 'ExpiredProviderToken' });
        const type = headers['apns-push-type'];
        if (!['alert', 'voip', 'background'].includes(type))
            return reply(400, { reason: 'InvalidPushType' });
        const topic = headers['apns-topic'];
        if (topic !== (type === 'voip' ? TOPIC + '.voip' : TOPIC))
            return reply(400, { reason: 'DeviceTokenNotForTopic' });
        if ((headers['apns-collapse-id'] || '').length > 64)
            return reply(400, { reason: 'BadCollapseId' });
        let payload;
        try { payload = JSON.parse(body); } catch (e) { return reply(400, { reason: 'PayloadEmpty' }); }
        if (!payload.aps) return reply(400, { reason: 'PayloadEmpty' });
        if (Buffer.byteLength(body) > (type === 'voip' ? 5120 : 4096))
            return reply(413, { reason: 'PayloadTooLarge' });
        if (state.dead.has(m[1])) return reply(410, { reason: 'Unregistered', timestamp: Date.now() });
        record('apns', m[1], payload, {
            'apns-push-type': type, 'apns-topic': topic,
            'apns-collapse-id': headers['apns-collapse-id'],
            'apns-expiration': headers['apns-expiration'],
            'apns-priority': headers['apns-priority'],
        }, '2.0');
        reply(200);
    });
});

let up = 0;
function listening() {
    if (++up < 2) return;
    fs.writeFileSync(args.dir + '/ports.json.tmp',
        JSON.stringify({ http: server.address().port, apns: apns.address().port }));
    fs.renameSync(args.dir + '/ports.json.tmp', args.dir + '/ports.json');
}
server.listen(0, '127.0.0.1', listening);
apns.listen(0, '127.0.0.1', listening);
process.on('SIGTERM', () => process.exit(0));
