// The unit in which the pooler's overhead is expressed: a TCP round trip, in
// µs, measured with a one-byte ping-pong (Nagle off) between processes in
// containers from the stack's image: over loopback inside one container, and
// between two containers across the cluster network's bridge.
import type { StartedStack } from "../harness/cluster";
import { ClusterTool, runOnClusterNetwork } from "../harness/workload";
import type { RoundTrip } from "./results";
import { distribution } from "./stats";

const PORT = 7777;

/** Perl, because the image has it (Debian's perl-base) and it adds little to a round trip. */
const PING_PONG = `use strict;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);
my ($mode, $host, $count) = @ARGV;
sub serve {
    my $listener = shift;
    while (my $c = $listener->accept) {
        setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
        my $b;
        while (sysread($c, $b, 1)) { syswrite($c, $b); }
    }
}
sub listener { IO::Socket::INET->new(LocalAddr => shift, LocalPort => ${PORT}, Listen => 16, ReuseAddr => 1) or die "listen: $!"; }
sub ping {
    my ($peer, $n) = @_;
    my $s;
    for (1 .. 100) { $s = IO::Socket::INET->new(PeerAddr => $peer, PeerPort => ${PORT}) and last; sleep 0.1; }
    die "connect: $!" unless $s;
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    my $b;
    for (1 .. $n) {
        my $t = time;
        syswrite($s, "x");
        sysread($s, $b, 1);
        printf "%.1f\\n", (time - $t) * 1e6;
    }
}
if ($mode eq "server") { serve(listener("0.0.0.0")); }
elsif ($mode eq "loopback") { my $l = listener("127.0.0.1"); if (fork() == 0) { serve($l); exit 0; } ping("127.0.0.1", $count); }
else { ping($host, $count); }
`;

function medianOf(output: string): number {
    const samples = output
        .split("\n")
        .filter((line) => /^\d+(\.\d+)?$/.test(line))
        .map(Number);
    return distribution(samples).p50;
}

/** Median round trips over `count` ping-pongs on each path. */
export async function measureRoundTrip(stack: StartedStack, count: number): Promise<RoundTrip> {
    const files = { "ping-pong.pl": PING_PONG };
    const loopback = await runOnClusterNetwork(stack, ["perl", "/work/ping-pong.pl", "loopback", "", String(count)], {
        files,
        timeoutMs: 120_000,
    });
    if (loopback.exitCode !== 0) {
        throw new Error(`loopback ping-pong failed:\n${loopback.output}`);
    }
    const server = await ClusterTool.start(stack, ["perl", "/work/ping-pong.pl", "server"], { files });
    try {
        const bridge = await runOnClusterNetwork(stack, ["perl", "/work/ping-pong.pl", "client", server.name, String(count)], {
            files,
            timeoutMs: 120_000,
        });
        if (bridge.exitCode !== 0) {
            throw new Error(`cluster-network ping-pong failed:\n${bridge.output}`);
        }
        return { loopbackUs: medianOf(loopback.output), clusterNetworkUs: medianOf(bridge.output) };
    } finally {
        // The server never exits by itself: stopped at once.
        await server.finish(1);
    }
}
