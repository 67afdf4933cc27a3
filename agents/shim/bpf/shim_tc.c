// SPDX-License-Identifier: GPL-2.0
/*
 * The shim data path in the kernel (thesis 6.4.2; RFC 5533 sections 9-10), as tc programs.
 *
 * Compiled at set-up time by agents/shim/bpfload.py (clang -target bpf) and loaded without
 * libbpf: the maps are the "maps" section below, created by the daemon, which keeps their
 * file descriptors and reprograms them when REAP switches a context's locator pair.
 *
 *   shim_out   tc egress of every real device.  A packet whose (source, destination) is the
 *              ULID pair of a translated context gets the current locators in its IPv6
 *              header and the 8-octet payload extension header carrying the peer's context
 *              tag; every other packet is only counted if it belongs to a context still on
 *              its ULID pair (REAP's Send Timeout needs to know that data is being sent).
 *              The daemon's /128 route to the peer ULID already sends a translated context's
 *              packets out of the device and gateway of the locator pair in use, with an MTU
 *              40 octets lower so that TCP's segments leave room for the header (see
 *              datapath.py for why 40 and not 8): then the rewrite is all there is to do.  A
 *              packet that left by another device (the route not yet moved, or a cached one)
 *              is redirected to the pair's device and gateway, named in the map
 *              (bpf_redirect_neigh).  TCP's large (GSO) segments stay whole: the header goes
 *              in without marking them for re-segmentation (push_header).
 *   shim_in    tc ingress of every real device: a packet with the payload extension header
 *              whose (context tag, source locator, destination locator) is known is stripped
 *              and gets the ULIDs back before TCP sees it.  Anything else, malformed shim
 *              packets included, is left to the kernel (the daemon's raw socket counts them
 *              or answers R1bis); nothing here ever rewrites a packet of another context.
 *
 * Both stamp each context's last packet in, and the first packet out 10 ms after it (sending,
 * nothing heard: a failure may have begun) writes one record to quiet_ring, which wakes the
 * daemon; under a flow that works nothing is written and the daemon sleeps.
 *
 * A host sends on one core and hears its peer's ACKs on another: nothing written for every
 * packet one way is on a cache line read for every packet the other way (struct watch, and the
 * per-CPU stats), or the two cores would trade that line for every packet.
 *
 * Upper-layer checksums are never touched: they were computed over the ULIDs, and the
 * receiver restores the ULIDs before checking them (RFC 5533 section 10).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SHIM6_PROTO 140
#define IP6_HLEN 40
#define SHIM_HLEN 8
#define AF_INET6_ 10
#define TAG_MASK ((1ULL << 47) - 1)

/* Read by the loader: the daemon creates each map with these sizes. */
struct map_def {
	__u32 type, key_size, value_size, max_entries;
};

struct ulid_pair {		/* key of out_map and watch_map */
	__u8 local[16];
	__u8 peer[16];
};
struct xlate {			/* value of out_map */
	__u8 src[16];		/* local locator */
	__u8 dst[16];		/* peer locator */
	__u64 peer_tag;		/* the peer's (receiver's) 47-bit context tag */
	__u64 packets, bytes;
	__u8 gateway[16];	/* next hop towards dst (all zero: dst is on link) */
	__u32 ifindex;		/* the device that next hop is on */
	__u32 mtu;		/* that device's MTU: no translated packet may exceed it */
};
struct in_key {
	__u64 tag;		/* our context tag */
	__u8 src[16];		/* the peer's locator (verified) */
	__u8 dst[16];		/* our locator */
};
struct restore {		/* value of in_map */
	__u8 local[16];		/* our ULID */
	__u8 peer[16];		/* the peer's ULID */
	__u64 packets, bytes;
};
/*
 * Value of watch_map, in three parts 128 octets apart (two cache lines whatever the value's
 * alignment): what every lookup and every packet out reads (next to the key: the lookup reads
 * it anyway), then what only the packets out write, then what only the packets in write.  The
 * packets in rewrite the first part's copy of last_rx_ns at most once per STAMP_NS; every packet
 * out reads that copy, and the exact last_rx_ns only when the copy cannot settle the quiet check
 * (a pause of PAUSE_NS, or nothing heard for QUIET_NS): the two cores no longer trade a line per
 * packet.
 */
struct watch {
	__u64 rx_stamp_ns;	/* last_rx_ns, at most STAMP_NS old */
	__u64 signalled_rx_ns;	/* the last_rx_ns of the last quiet signal: one signal per quiet spell */
	__u8 read_pad[112];
	__u64 tx_packets, tx_bytes;
	__u64 last_tx_ns;	/* when the context's last packet went out (CLOCK_MONOTONIC) */
	__u8 out_pad[104];
	__u64 rx_packets, rx_bytes;
	__u64 last_rx_ns;	/* when the peer's last data packet came in */
};
struct quiet {			/* a record of quiet_ring */
	struct ulid_pair pair;
	__u64 last_rx_ns;
};

enum { S_OUT = 0, S_IN, S_IN_UNKNOWN, S_MALFORMED, S_OUT_REDIRECT, S_OUT_DROP, S_NO_ROUTE, S_IN_DROP, S_OUT_TOO_BIG,
       S_MAX = 9 };

struct map_def out_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct ulid_pair), sizeof(struct xlate), 4096 };
struct map_def in_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct in_key), sizeof(struct restore), 16384 };
struct map_def watch_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct ulid_pair), sizeof(struct watch), 4096 };
/* per CPU: the packets out and in of one context are counted on different cores */
struct map_def stats SEC("maps") = { BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64), S_MAX };
/*
 * A context sends and has heard nothing from its peer for QUIET_NS: the one moment the daemon
 * needs to look at TCP (upper-layer feedback) and at REAP's Send Timeout.  Under a flow that
 * works, ACKs come back every few microseconds and nothing is written here, so the daemon
 * sleeps instead of polling; after a silent failure the first packet out QUIET_NS after the
 * last one in (TCP's tail-loss probe or retransmission at the latest) wakes it.
 */
struct map_def quiet_ring SEC("maps") = { BPF_MAP_TYPE_RINGBUF, 0, 0, 16384 };
/*
 * How many entries out_map holds (the daemon writes it after each change): with none, a packet
 * out skips the hash lookup that would miss (an array lookup instead), the common case of a host
 * whose contexts are all on their ULIDs.
 */
struct map_def translations SEC("maps") = { BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u32), 1 };
#define QUIET_NS 10000000ULL
#define PAUSE_NS 1000000ULL
#define STAMP_NS 100000ULL

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);

	if (value)
		*value += 1;	/* this CPU's own counter */
}

static __always_inline int load_ipv6(struct __sk_buff *skb, struct ipv6hdr *ip6)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return -1;
	return bpf_skb_load_bytes(skb, ETH_HLEN, ip6, sizeof(*ip6));
}

/* What shim_out reads in one go and, translating, writes back in one go, header included. */
struct front {
	__u8 eth[ETH_HLEN];
	struct ipv6hdr ip6;
	__u8 shim[SHIM_HLEN];
} __attribute__((packed));

/*
 * Put the 8-octet payload extension header in after the IPv6 header without touching the
 * packet's GSO state.  bpf_skb_adjust_room would mark a large (GSO) segment "dodgy", and a
 * veth must then cut it in software, which the kernel cannot do for protocol 140: it drops
 * the segment.  Growing the head instead (bpf_skb_change_head) leaves the payload where it
 * is and only rewrites the 62 octets in front of it, so TCP's 64 KiB segments cross the
 * lab's veths whole and the per-packet cost is paid once per segment, not per 1.5 KiB.
 * (The price: TCP sends clones of its segments, and bpf_skb_change_head copies a clone's
 * head -- skb_cow, where bpf_skb_adjust_room's skb_cow_head would not -- once per segment.)
 */
static __always_inline int push_header(struct __sk_buff *skb, const struct front *front)
{
	if (bpf_skb_change_head(skb, SHIM_HLEN, 0) ||
	    bpf_skb_store_bytes(skb, 0, front, sizeof(*front), 0))
		return -1;
	return 0;
}

/*
 * The largest packet this one puts on the wire, without the payload header: itself, or for a
 * large (GSO) segment each of the packets it is cut into (IPv6 + TCP/UDP header + gso_size).
 * A socket builds its next segment for the MTU of the route it has cached; the first one
 * after the translation route's lower MTU went in can still be sized for the untranslated
 * path, and with the header it would be 8 octets too big for the device.
 */
static __always_inline __u32 wire_size(struct __sk_buff *skb, __u8 nexthdr)
{
	__u8 doff;

	if (!skb->gso_size)
		return skb->len - ETH_HLEN;
	if (nexthdr == 17)
		return IP6_HLEN + 8 + skb->gso_size;
	if (nexthdr != 6 || bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN + 12, &doff, 1) < 0)
		return 0;	/* no transport header we can size: let it through */
	return IP6_HLEN + (doff >> 4) * 4 + skb->gso_size;
}

/*
 * Quiet: nothing heard for QUIET_NS, or a packet out after a pause of PAUSE_NS with nothing heard
 * since the one before it.  The second is TCP's tail-loss probe or retransmission timeout as a
 * bulk sender's first packet after a silent cut (it had stopped, its window full, and its probe
 * comes 2 SRTT + 2 ms later: sooner than QUIET_NS on a short path).  A sender that works does
 * not pause without an ACK in between: its window opens only with one.
 */
static __always_inline void quiet_check(struct watch *w, const struct ulid_pair *key)
{
	struct quiet q;
	__u64 now = bpf_ktime_get_ns(), tx = w->last_tx_ns, rx;

	w->last_tx_ns = now;
	if (now - tx <= PAUSE_NS && now - w->rx_stamp_ns <= QUIET_NS)
		return;		/* no pause, and heard within QUIET_NS (last_rx_ns >= rx_stamp_ns) */
	rx = w->last_rx_ns;
	if (w->signalled_rx_ns == rx)
		return;
	if (now - rx <= QUIET_NS && (rx >= tx || now - tx <= PAUSE_NS))
		return;
	__builtin_memcpy(&q.pair, key, sizeof(q.pair));
	q.last_rx_ns = rx;
	if (!bpf_ringbuf_output(&quiet_ring, &q, sizeof(q), 0))	/* a full ring: the next packet tries again */
		w->signalled_rx_ns = rx;
}

/* A packet of a context in: heard from the peer now (the copy only when it is STAMP_NS old). */
static __always_inline void heard(struct watch *w)
{
	__u64 now = bpf_ktime_get_ns();

	w->last_rx_ns = now;
	if (now - w->rx_stamp_ns > STAMP_NS)
		w->rx_stamp_ns = now;
}

/* A packet of a context out: counted (``len``) if it keeps its ULIDs, and checked for quiet. */
static __always_inline void watch_out(struct ulid_pair *key, __u32 len, int counted)
{
	struct watch *w = bpf_map_lookup_elem(&watch_map, key);

	if (!w)
		return;
	if (counted) {
		__sync_fetch_and_add(&w->tx_packets, 1);
		__sync_fetch_and_add(&w->tx_bytes, len);
	}
	quiet_check(w, key);
}

SEC("tc/out")
int shim_out(struct __sk_buff *skb)
{
	struct bpf_redir_neigh nh = {};
	struct front f;
	struct ulid_pair key;
	struct xlate *x;
	__u32 zero = 0, *any;
	__u64 tag;
	int i;

	if (skb->protocol != bpf_htons(ETH_P_IPV6) || bpf_skb_load_bytes(skb, 0, &f, ETH_HLEN + IP6_HLEN) < 0)
		return TC_ACT_OK;	/* the MACs are kept: the route chose them */
	__builtin_memcpy(key.local, &f.ip6.saddr, 16);
	__builtin_memcpy(key.peer, &f.ip6.daddr, 16);
	any = bpf_map_lookup_elem(&translations, &zero);
	x = any && *any ? bpf_map_lookup_elem(&out_map, &key) : NULL;
	if (!x) {		/* not translated: the kernel's own path, counted for REAP */
		watch_out(&key, skb->len, 1);
		return TC_ACT_OK;
	}
	if (x->mtu && wire_size(skb, f.ip6.nexthdr) + SHIM_HLEN > x->mtu) {
		/* Dropped here rather than refused by a router (Packet Too Big): the socket has
		 * just taken the lower MTU, and TCP sends the data again in smaller segments. */
		count(S_OUT_TOO_BIG);
		return TC_ACT_SHOT;
	}
	tag = (x->peer_tag & TAG_MASK) | (1ULL << 47);	/* P bit: payload extension header */
	f.shim[0] = f.ip6.nexthdr;
	f.shim[1] = 0;
#pragma unroll
	for (i = 0; i < 6; i++)
		f.shim[2 + i] = (tag >> (40 - 8 * i)) & 0xff;
	f.ip6.payload_len = bpf_htons(bpf_ntohs(f.ip6.payload_len) + SHIM_HLEN);
	f.ip6.nexthdr = SHIM6_PROTO;
	__builtin_memcpy(&f.ip6.saddr, x->src, 16);
	__builtin_memcpy(&f.ip6.daddr, x->dst, 16);
	if (push_header(skb, &f)) {
		count(S_OUT_DROP);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&x->packets, 1);
	__sync_fetch_and_add(&x->bytes, skb->len);
	count(S_OUT);
	watch_out(&key, 0, 0);	/* counted above, per pair; only the quiet check here */
	if (skb->ifindex == x->ifindex)
		return TC_ACT_OK;	/* the route sent it to the pair's gateway: done */
	if (!x->ifindex) {
		count(S_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	/* Left by another device: send it to the pair's next hop (the neighbour code fills the MACs). */
	count(S_OUT_REDIRECT);
	nh.nh_family = AF_INET6_;
	__builtin_memcpy(nh.ipv6_nh, x->gateway, 16);
	if (!(x->gateway[0] | x->gateway[1]))	/* on link: the destination is the neighbour */
		__builtin_memcpy(nh.ipv6_nh, x->dst, 16);
	return bpf_redirect_neigh(x->ifindex, &nh, sizeof(nh), 0);
}

SEC("tc/in")
int shim_in(struct __sk_buff *skb)
{
	struct ipv6hdr ip6;
	struct in_key key = {};
	struct restore *r;
	struct ulid_pair wkey;
	struct watch *w;
	__u8 shim[SHIM_HLEN];
	__u16 plen;
	int i;

	if (load_ipv6(skb, &ip6) < 0)
		return TC_ACT_OK;
	if (ip6.nexthdr != SHIM6_PROTO) {
		__builtin_memcpy(wkey.local, &ip6.daddr, 16);
		__builtin_memcpy(wkey.peer, &ip6.saddr, 16);
		w = bpf_map_lookup_elem(&watch_map, &wkey);
		if (w) {
			__sync_fetch_and_add(&w->rx_packets, 1);
			__sync_fetch_and_add(&w->rx_bytes, skb->len);
			heard(w);
		}
		return TC_ACT_OK;
	}
	plen = bpf_ntohs(ip6.payload_len);
	if (plen < SHIM_HLEN || bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, shim, SHIM_HLEN) < 0) {
		count(S_MALFORMED);
		return TC_ACT_OK;	/* truncated: the kernel drops it or the daemon counts it */
	}
	if (!(shim[2] & 0x80))
		return TC_ACT_OK;	/* a control message: for the daemon's raw socket */
	if (shim[1] != 0 || shim[0] == SHIM6_PROTO || skb->len < ETH_HLEN + IP6_HLEN + plen) {
		count(S_MALFORMED);
		return TC_ACT_OK;
	}
#pragma unroll
	for (i = 0; i < 6; i++)
		key.tag = (key.tag << 8) | shim[2 + i];
	key.tag &= TAG_MASK;
	__builtin_memcpy(key.src, &ip6.saddr, 16);
	__builtin_memcpy(key.dst, &ip6.daddr, 16);
	r = bpf_map_lookup_elem(&in_map, &key);
	if (!r) {		/* unknown tag or unverified locator: the daemon answers R1bis */
		count(S_IN_UNKNOWN);
		return TC_ACT_OK;
	}
	ip6.nexthdr = shim[0];
	ip6.payload_len = bpf_htons(plen - SHIM_HLEN);
	__builtin_memcpy(&ip6.saddr, r->peer, 16);
	__builtin_memcpy(&ip6.daddr, r->local, 16);
	if (bpf_skb_adjust_room(skb, -SHIM_HLEN, BPF_ADJ_ROOM_NET, BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), BPF_F_RECOMPUTE_CSUM)) {
		count(S_IN_DROP);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&r->packets, 1);
	__sync_fetch_and_add(&r->bytes, skb->len);
	count(S_IN);
	__builtin_memcpy(wkey.local, r->local, 16);	/* heard from the peer: not quiet (not counted: */
	__builtin_memcpy(wkey.peer, r->peer, 16);	/* it came on a locator pair, not the ULIDs) */
	w = bpf_map_lookup_elem(&watch_map, &wkey);
	if (w)
		heard(w);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
