// The PeerJS server (npm peer, pinned in package.json) that make bench-calls
// measures beside famcall's relay: node bench/calls/peerjs.mjs PORT.
// Its defaults, but for two that only a benchmark needs: room for every
// pair's two peers (concurrent_limit 5,000), and no sweep of peers that
// send no HEARTBEAT (callload sends none: the measured work is the relay).
import { PeerServer } from "peer";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: node peerjs.mjs PORT");
    process.exit(2);
}
PeerServer({
    host: "127.0.0.1",
    port,
    path: "/",
    concurrent_limit: 1000000,
    alive_timeout: 24 * 3600 * 1000,
}, () => console.log(`PeerJS server ${process.version} on 127.0.0.1:${port}`));
