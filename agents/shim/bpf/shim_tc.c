// SPDX-License-Identifier: GPL-2.0
/*
 * The shim data path in the kernel (thesis 6.4.2; RFC 5533 sections 9-10), as tc programs.
 *
 * Compiled at set-up time by agents/shim/bpfload.py (clang -target bpf) and loaded without
 * libbpf: the maps are the "maps" section below, created by the daemon, which keeps their
 * file descriptors and reprograms them when REAP switches a context's locator pair.
 *
 *   shim_out   tc ingress of the host's "shim1" device.  Packets of a translated context are
 *              routed by the kernel (a /128 route to the peer ULID) into shim0 -> shim1; the
 *              program puts the current locators in the IPv6 header, inserts the 8-octet
 *              payload extension header carrying the peer's context tag, routes the result
 *              (bpf_fib_lookup: the packet is routed after the rewrite) and sends it out of
 *              the real device.  TCP's large (GSO) segments stay whole: the header goes in
 *              without marking them for re-segmentation (push_header), and shim0's MTU is
 *              40 octets below the real devices' so that every segment they stand for fits
 *              the path with the header (see datapath.py for why 40 and not 8).
 *   shim_in    tc ingress of every real device: a packet with the payload extension header
 *              whose (context tag, source locator, destination locator) is known is stripped
 *              and gets the ULIDs back before TCP sees it.  Anything else, malformed shim
 *              packets included, is left to the kernel (the daemon's raw socket counts them
 *              or answers R1bis); nothing here ever rewrites a packet of another context.
 *   shim_watch tc egress of every real device: counts packets of contexts still on their
 *              ULID pair, so that REAP knows when data is being sent (Send Timeout).
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
struct watch {			/* value of watch_map */
	__u64 tx_packets, tx_bytes, rx_packets, rx_bytes;
};

enum { S_OUT = 0, S_IN, S_IN_UNKNOWN, S_MALFORMED, S_OUT_MISS, S_OUT_DROP, S_NO_ROUTE, S_IN_DROP, S_MAX = 8 };

struct map_def out_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct ulid_pair), sizeof(struct xlate), 4096 };
struct map_def in_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct in_key), sizeof(struct restore), 16384 };
struct map_def watch_map SEC("maps") = { BPF_MAP_TYPE_HASH, sizeof(struct ulid_pair), sizeof(struct watch), 4096 };
struct map_def stats SEC("maps") = { BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u64), S_MAX };

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline int load_ipv6(struct __sk_buff *skb, struct ipv6hdr *ip6)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return -1;
	return bpf_skb_load_bytes(skb, ETH_HLEN, ip6, sizeof(*ip6));
}

/*
 * Put the 8-octet payload extension header in after the IPv6 header without touching the
 * packet's GSO state.  bpf_skb_adjust_room would mark a large (GSO) segment "dodgy", and a
 * veth must then cut it in software, which the kernel cannot do for protocol 140: it drops
 * the segment.  Growing the head instead (bpf_skb_change_head) leaves the payload where it
 * is and only rewrites the 62 octets in front of it, so TCP's 64 KiB segments cross the
 * lab's veths whole and the per-packet cost is paid once per segment, not per 1.5 KiB.
 */
static __always_inline int push_header(struct __sk_buff *skb, const __u8 *eth, struct ipv6hdr *ip6,
					const __u8 *shim)
{
	if (bpf_skb_change_head(skb, SHIM_HLEN, 0) ||
	    bpf_skb_store_bytes(skb, 0, eth, ETH_HLEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, ip6, sizeof(*ip6), 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + IP6_HLEN, shim, SHIM_HLEN, 0))
		return -1;
	return 0;
}

SEC("tc/out")
int shim_out(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	struct ipv6hdr ip6;
	struct ulid_pair key;
	struct xlate *x;
	__u8 shim[SHIM_HLEN];
	__u8 eth[ETH_HLEN] = {};
	__u64 tag;
	long rc;
	int i;

	if (load_ipv6(skb, &ip6) < 0)
		return TC_ACT_SHOT;
	__builtin_memcpy(key.local, &ip6.saddr, 16);
	__builtin_memcpy(key.peer, &ip6.daddr, 16);
	x = bpf_map_lookup_elem(&out_map, &key);
	if (!x) {		/* no translation (any more): never send ULIDs the wrong way */
		count(S_OUT_MISS);
		return TC_ACT_SHOT;
	}
	tag = (x->peer_tag & TAG_MASK) | (1ULL << 47);	/* P bit: payload extension header */
	shim[0] = ip6.nexthdr;
	shim[1] = 0;
#pragma unroll
	for (i = 0; i < 6; i++)
		shim[2 + i] = (tag >> (40 - 8 * i)) & 0xff;
	ip6.payload_len = bpf_htons(bpf_ntohs(ip6.payload_len) + SHIM_HLEN);
	ip6.nexthdr = SHIM6_PROTO;
	__builtin_memcpy(&ip6.saddr, x->src, 16);
	__builtin_memcpy(&ip6.daddr, x->dst, 16);

	/* Route the rewritten packet: the route to the peer ULID may be the one that failed. */
	fib.family = AF_INET6_;
	fib.ifindex = skb->ingress_ifindex;
	__builtin_memcpy(fib.ipv6_src, &ip6.saddr, 16);
	__builtin_memcpy(fib.ipv6_dst, &ip6.daddr, 16);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(S_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	eth[12] = ETH_P_IPV6 >> 8;
	eth[13] = ETH_P_IPV6 & 0xff;
	if (push_header(skb, eth, &ip6, shim)) {
		count(S_OUT_DROP);
		return TC_ACT_SHOT;
	}
	__sync_fetch_and_add(&x->packets, 1);
	__sync_fetch_and_add(&x->bytes, skb->len);
	count(S_OUT);
	/* The neighbour subsystem fills in the MAC addresses (and resolves them if needed). */
	nh.nh_family = AF_INET6_;
	__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
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
	return TC_ACT_OK;
}

SEC("tc/watch")
int shim_watch(struct __sk_buff *skb)
{
	struct ulid_pair key;
	struct watch *w;

	if (skb->protocol != bpf_htons(ETH_P_IPV6) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + 8, &key, sizeof(key)) < 0)
		return TC_ACT_OK;
	w = bpf_map_lookup_elem(&watch_map, &key);
	if (w) {
		__sync_fetch_and_add(&w->tx_packets, 1);
		__sync_fetch_and_add(&w->tx_bytes, skb->len);
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
