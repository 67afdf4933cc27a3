// SPDX-License-Identifier: GPL-2.0
/*
 * The exit path cache's data path (thesis 6.3.1.2), as two tc programs on the host's devices.
 *
 * Compiled when the agent starts (agents/exitpath/datapath.py, clang -target bpf) and attached
 * through tcx links owned by the agent's process: if the agent dies, the kernel detaches both
 * programs and the host behaves as if the agent had never run (fail open).
 *
 *   ep_egress   every packet the host sends.  The initial packet of a flow (a TCP SYN, or the
 *               first UDP datagram of a 5-tuple) to a destination without a valid entry in
 *               `cache` starts a race (step 3): the packet goes out as the application made it
 *               and one copy per other source address of the host goes out beside it, each
 *               with its source rewritten (checksum fixed).  The flow is remembered in `flows`
 *               and each copy's tuple in `alts`.  Later packets of a flow whose race was won
 *               by another source get that source (per-flow source rewrite for the flow's
 *               lifetime; the socket never knows).
 *   ep_ingress  every packet the host receives.  The first reply to any copy decides the race
 *               (step 4): a reply to the original source leaves the flow alone; a reply to a
 *               copy's source makes that source the flow's, and the reply gets the original
 *               destination back.  Replies to the losing attempts are never given to the
 *               application: to a copy's address the kernel finds no socket and answers with a
 *               RST itself; to the original address (when a copy won) the packet is dropped and
 *               the agent is asked (`resets`) to send the RST.  ICMPv6 errors about a racing or
 *               rewritten flow are dropped (a dead ISP's "no route" must not kill the socket
 *               while another copy may still win).  Every accepted packet is noted in `seen`
 *               (peer, our address -> first/last time): the agent's cache learns from it.
 *
 * Packets the agent sends itself (RSTs) and the copies carry skb->mark == config.mark and are
 * let through untouched.
 *
 * An initial packet whose source was chosen on purpose (skb->mark has config.chosen_mark: a policy's
 * SNAT rule set it, agents/marks.py) keeps its source whatever the cache says (flow state F_CHOSEN,
 * no copies).  Only if it is sent again - no answer within TCP's initial retransmission timeout - is
 * the flow raced from the retransmission on, like a destination without an entry; ICMPv6 errors about
 * it are dropped meanwhile, so a dead ISP's "no route" cannot end the connection before the race.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SOURCES 4
#define IP6_HLEN 40
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define TCP_FLAG_RST 0x04

/* F_CLAIMED: a copy's reply won the compare-and-swap and is writing its source (then F_REWRITTEN) */
/* F_CACHED: a flow that started from another source than its destination's entry (step 2 by rewrite) */
/* F_CHOSEN: the source was chosen on purpose (config.chosen_mark); raced only if its SYN is sent again;
 * F_CHOSEN_OK: such a flow was answered.  Neither teaches the cache: it holds the source the host would
 * choose for a destination, and a chosen flow says nothing about that */
enum { F_RACING = 1, F_DIRECT = 2, F_REWRITTEN = 3, F_TIMED = 4, F_CLAIMED = 5, F_CACHED = 6, F_CHOSEN = 7,
       F_CHOSEN_OK = 8 };
enum { S_RACES = 0, S_COPIES, S_COPY_FAILED, S_REWRITE_OUT, S_REWRITE_IN, S_LOSER_DROPPED, S_LOSER_TO_KERNEL,
       S_ICMP_DROPPED, S_CHOSEN_KEPT, S_CHOSEN_RACED, S_MAX = 10 };

/* Read by the loader: the daemon creates each map with these sizes. */
struct map_def {
	__u32 type, key_size, value_size, max_entries;
};

struct config {
	__u32 nsources;
	__u32 mark;
	__u8 sources[MAX_SOURCES][16];
	__u32 chosen_mark;	/* 0: no chosen sources */
};
struct centry {			/* value of cache: the exit path cache as the kernel sees it */
	__u8 src[16];
	__u64 expires_ns;	/* CLOCK_MONOTONIC */
};
struct fkey {			/* key of flows (local = the application's source), alts, resets */
	__u8 local[16];
	__u8 peer[16];
	__u16 lport, pport;	/* network order */
	__u8 proto;
	__u8 pad[3];
};
struct flow {
	__u8 src[16];		/* the source the flow uses (F_REWRITTEN, F_TIMED) */
	__u64 started_ns;
	__u64 last_ns;
	__u32 state;		/* changed by compare-and-swap: two replies may race on two CPUs */
	__u32 pad;
};
struct alt {
	__u8 orig[16];		/* the application's source of the flow this copy belongs to */
};
struct race {			/* value of races, keyed by destination: read (and deleted) by the agent */
	__u8 src[16];
	__u64 started_ns;
};
struct pair {
	__u8 peer[16];
	__u8 local[16];
};
struct seen {
	__u64 first_ns, last_ns, packets;
};
struct reset {			/* a losing SYN-ACK to the application's address: the agent answers RST */
	__u32 seq;		/* network order: the SYN-ACK's acknowledgement number */
	__u32 count;
};

struct map_def config SEC("maps") = { BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(struct config), 1 };
struct map_def cache SEC("maps") = { BPF_MAP_TYPE_HASH, 16, sizeof(struct centry), 16384 };
struct map_def flows SEC("maps") = { BPF_MAP_TYPE_LRU_HASH, sizeof(struct fkey), sizeof(struct flow), 65536 };
struct map_def alts SEC("maps") = { BPF_MAP_TYPE_LRU_HASH, sizeof(struct fkey), sizeof(struct alt), 65536 };
struct map_def races SEC("maps") = { BPF_MAP_TYPE_LRU_HASH, 16, sizeof(struct race), 4096 };
struct map_def seen SEC("maps") = { BPF_MAP_TYPE_LRU_HASH, sizeof(struct pair), sizeof(struct seen), 16384 };
struct map_def resets SEC("maps") = { BPF_MAP_TYPE_LRU_HASH, sizeof(struct fkey), sizeof(struct reset), 4096 };
struct map_def stats SEC("maps") = { BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u64), S_MAX };

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&stats, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline void addr_copy(__u8 *dst, const __u8 *src)
{
	__u32 *d = (__u32 *)dst;
	const __u32 *s = (const __u32 *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
}

static __always_inline int is_ours(const struct config *cfg, const __u8 *addr)
{
#pragma unroll
	for (int i = 0; i < MAX_SOURCES; i++)
		if (i < cfg->nsources && addr_eq(cfg->sources[i], addr))
			return 1;
	return 0;
}

/* Link-local or multicast: never raced, never learned. */
static __always_inline int is_local_scope(const __u8 *addr)
{
	return addr[0] == 0xff || (addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80);
}

/* The flow's packets leave from another address than the application's `local`. */
static __always_inline int runs_elsewhere(struct flow *f, const __u8 *local)
{
	__u32 state = *(volatile __u32 *)&f->state;

	return state == F_REWRITTEN || state == F_CLAIMED ||
	       ((state == F_TIMED || state == F_CACHED) && !addr_eq(f->src, local));
}

struct parsed {
	struct ipv6hdr ip6;
	__u16 ports[2];		/* as on the wire: source, destination */
	__u8 flags;		/* TCP flags */
	__u32 ack;		/* TCP acknowledgement number, network order */
	__u32 csum_off;		/* offset of the L4 checksum */
};

/* IPv6 with TCP or UDP right after the fixed header (what the race is about); 0 when so. */
static __always_inline int parse(struct __sk_buff *skb, struct parsed *p)
{
	__u32 l4 = ETH_HLEN + IP6_HLEN;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return -1;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &p->ip6, sizeof(p->ip6)))
		return -1;
	if (p->ip6.nexthdr != PROTO_TCP && p->ip6.nexthdr != PROTO_UDP)
		return -1;
	if (bpf_skb_load_bytes(skb, l4, p->ports, sizeof(p->ports)))
		return -1;
	p->flags = 0;
	p->ack = 0;
	if (p->ip6.nexthdr == PROTO_TCP) {
		if (bpf_skb_load_bytes(skb, l4 + 13, &p->flags, 1) || bpf_skb_load_bytes(skb, l4 + 8, &p->ack, 4))
			return -1;
		p->csum_off = l4 + 16;
	} else {
		p->csum_off = l4 + 6;
	}
	return 0;
}

/* Put `to` in the address at `addr_off` (source 8, destination 24) and fix the L4 checksum. */
static __always_inline int set_addr(struct __sk_buff *skb, const struct parsed *p, __u32 addr_off,
				    __u8 *from, __u8 *to)
{
	__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);
	__u64 flags = BPF_F_PSEUDO_HDR | (p->ip6.nexthdr == PROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);

	if (diff < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, p->csum_off, 0, diff, flags))
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN + addr_off, to, 16, 0);
}

static __always_inline void fkey_of(struct fkey *k, const __u8 *local, const __u8 *peer, __u16 lport, __u16 pport,
				    __u8 proto)
{
	__builtin_memset(k, 0, sizeof(*k));
	addr_copy(k->local, local);
	addr_copy(k->peer, peer);
	k->lport = lport;
	k->pport = pport;
	k->proto = proto;
}

/* Step 3: one copy of the initial packet per other source address. */
static __always_inline void send_copies(struct __sk_buff *skb, struct parsed *p, const struct config *cfg)
{
	__u8 orig[16], cur[16];
	__u32 mark = skb->mark;
	struct alt a = {};
	struct fkey k;

	addr_copy(orig, p->ip6.saddr.in6_u.u6_addr8);
	addr_copy(cur, orig);
	addr_copy(a.orig, orig);
#pragma unroll
	for (int i = 0; i < MAX_SOURCES; i++) {
		__u8 src[16];

		if (i >= cfg->nsources)
			break;
		addr_copy(src, cfg->sources[i]);
		if (addr_eq(src, orig))
			continue;
		if (set_addr(skb, p, 8, cur, src)) {
			count(S_COPY_FAILED);
			break;
		}
		addr_copy(cur, src);
		fkey_of(&k, src, p->ip6.daddr.in6_u.u6_addr8, p->ports[0], p->ports[1], p->ip6.nexthdr);
		bpf_map_update_elem(&alts, &k, &a, BPF_ANY);
		skb->mark = cfg->mark;
		if (bpf_clone_redirect(skb, skb->ifindex, 0))
			count(S_COPY_FAILED);
		else
			count(S_COPIES);
		skb->mark = mark;
	}
	if (!addr_eq(cur, orig) && set_addr(skb, p, 8, cur, orig))
		count(S_COPY_FAILED);
}

/* Step 3 for a flow: tell the agent (its timer, step 5) and send the copies. */
static __always_inline void start_race(struct __sk_buff *skb, struct parsed *p, const struct config *cfg,
				       struct fkey *k, __u64 now)
{
	struct race r = {};

	addr_copy(r.src, k->local);
	r.started_ns = now;
	bpf_map_update_elem(&races, k->peer, &r, BPF_NOEXIST);
	count(S_RACES);
	send_copies(skb, p, cfg);
}

SEC("tc/egress")
int ep_egress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct centry *c;
	struct parsed p;
	struct flow *f;
	struct fkey k;
	__u64 now;
	int syn;

	if (!cfg || cfg->nsources < 2 || skb->mark == cfg->mark || parse(skb, &p))
		return TC_ACT_UNSPEC;
	now = bpf_ktime_get_ns();
	syn = p.ip6.nexthdr == PROTO_TCP && (p.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
	fkey_of(&k, p.ip6.saddr.in6_u.u6_addr8, p.ip6.daddr.in6_u.u6_addr8, p.ports[0], p.ports[1], p.ip6.nexthdr);
	f = bpf_map_lookup_elem(&flows, &k);
	if (f && syn && (f->state == F_DIRECT || f->state == F_REWRITTEN || f->state == F_CACHED ||
			 f->state == F_CHOSEN_OK)) {
		bpf_map_delete_elem(&flows, &k);	/* a new connection on an old 4-tuple */
		f = 0;
	}
	if (syn)
		bpf_map_delete_elem(&alts, &k);	/* the tuple is a real socket's now, not a stale copy's */
	if (f) {
		f->last_ns = now;
		if (runs_elsewhere(f, k.local)) {
			__u8 to[16];

			addr_copy(to, f->src);
			if (!set_addr(skb, &p, 8, k.local, to))
				count(S_REWRITE_OUT);
		} else if (f->state == F_RACING && syn) {
			send_copies(skb, &p, cfg);	/* the SYN again: so are its copies */
		} else if (syn && __sync_val_compare_and_swap(&f->state, F_CHOSEN, F_RACING) == F_CHOSEN) {
			count(S_CHOSEN_RACED);	/* the chosen source got no answer in time */
			start_race(skb, &p, cfg, &k, now);
		}
		return TC_ACT_UNSPEC;
	}
	if (p.ip6.nexthdr == PROTO_TCP && !syn)
		return TC_ACT_UNSPEC;
	if (is_local_scope(k.peer) || !is_ours(cfg, k.local))
		return TC_ACT_UNSPEC;
	if (cfg->chosen_mark && (skb->mark & cfg->chosen_mark) == cfg->chosen_mark) {
		struct flow nf = {};

		nf.state = F_CHOSEN;
		nf.started_ns = now;
		nf.last_ns = now;
		addr_copy(nf.src, k.local);
		bpf_map_update_elem(&flows, &k, &nf, BPF_ANY);
		count(S_CHOSEN_KEPT);
		return TC_ACT_UNSPEC;
	}
	c = bpf_map_lookup_elem(&cache, k.peer);
	if (c && c->expires_ns > now) {
		/* steps 1-2: the route hint made the socket choose the cached source; a socket that has
		 * another one (bound by the application, or opened before the hint was in place) is
		 * rewritten to the cached source for the flow's lifetime */
		struct flow nf = {};
		struct alt a = {};
		struct fkey ak;

		if (addr_eq(c->src, k.local) || !is_ours(cfg, c->src))
			return TC_ACT_UNSPEC;
		nf.state = F_CACHED;
		nf.started_ns = now;
		nf.last_ns = now;
		addr_copy(nf.src, c->src);
		bpf_map_update_elem(&flows, &k, &nf, BPF_ANY);
		addr_copy(a.orig, k.local);
		fkey_of(&ak, nf.src, k.peer, k.lport, k.pport, k.proto);
		bpf_map_update_elem(&alts, &ak, &a, BPF_ANY);
		if (!set_addr(skb, &p, 8, k.local, nf.src))
			count(S_REWRITE_OUT);
		return TC_ACT_UNSPEC;
	}
	{
		struct flow nf = {};

		nf.state = F_RACING;
		nf.started_ns = now;
		nf.last_ns = now;
		bpf_map_update_elem(&flows, &k, &nf, BPF_ANY);
	}
	start_race(skb, &p, cfg, &k, now);
	return TC_ACT_UNSPEC;
}

static __always_inline void note_seen(const __u8 *peer, const __u8 *local, __u64 now)
{
	struct pair pk;
	struct seen *s;

	if (is_local_scope(peer))
		return;
	addr_copy(pk.peer, peer);
	addr_copy(pk.local, local);
	s = bpf_map_lookup_elem(&seen, &pk);
	if (s) {
		s->last_ns = now;
		s->packets++;
	} else {
		struct seen n = { now, now, 1 };

		bpf_map_update_elem(&seen, &pk, &n, BPF_NOEXIST);
	}
}

/* An ICMPv6 error about a flow that is racing or rewritten: drop it (see the header). */
static __always_inline int icmp_about_race(struct __sk_buff *skb)
{
	__u32 off = ETH_HLEN + IP6_HLEN;
	struct ipv6hdr inner;
	__u16 ports[2];
	struct flow *f;
	struct fkey k;
	__u8 type;

	if (bpf_skb_load_bytes(skb, off, &type, 1) || !(type == 1 || type == 3 || type == 4))
		return 0;
	if (bpf_skb_load_bytes(skb, off + 8, &inner, sizeof(inner)) ||
	    bpf_skb_load_bytes(skb, off + 8 + IP6_HLEN, ports, sizeof(ports)))
		return 0;
	fkey_of(&k, inner.saddr.in6_u.u6_addr8, inner.daddr.in6_u.u6_addr8, ports[0], ports[1], inner.nexthdr);
	f = bpf_map_lookup_elem(&flows, &k);
	if (f)
		return f->state != F_DIRECT && f->state != F_CHOSEN_OK;
	return bpf_map_lookup_elem(&alts, &k) != 0;	/* about a copy */
}

/* Router and neighbour solicitations and advertisements, redirects (133-137): not communications. */
static __always_inline int is_neighbour_discovery(struct __sk_buff *skb)
{
	__u8 type;

	if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, &type, 1))
		return 1;
	return type >= 133 && type <= 137;
}

SEC("tc/ingress")
int ep_ingress(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct parsed p;
	struct flow *f;
	struct alt *a;
	struct fkey k;
	__u64 now;

	if (!cfg || cfg->nsources < 2)
		return TC_ACT_UNSPEC;
	now = bpf_ktime_get_ns();
	if (parse(skb, &p)) {
		struct ipv6hdr ip6;

		if (skb->protocol != bpf_htons(ETH_P_IPV6) || bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return TC_ACT_UNSPEC;
		if (ip6.nexthdr == PROTO_ICMPV6 && icmp_about_race(skb)) {
			count(S_ICMP_DROPPED);
			return TC_ACT_SHOT;
		}
		if (ip6.nexthdr == PROTO_ICMPV6 && is_neighbour_discovery(skb))
			return TC_ACT_UNSPEC;
		if (is_ours(cfg, ip6.daddr.in6_u.u6_addr8))
			note_seen(ip6.saddr.in6_u.u6_addr8, ip6.daddr.in6_u.u6_addr8, now);
		return TC_ACT_UNSPEC;
	}
	if (!is_ours(cfg, p.ip6.daddr.in6_u.u6_addr8))
		return TC_ACT_UNSPEC;
	/* our view: local = the destination of this packet, the port it came to is ours */
	fkey_of(&k, p.ip6.daddr.in6_u.u6_addr8, p.ip6.saddr.in6_u.u6_addr8, p.ports[1], p.ports[0], p.ip6.nexthdr);
	f = bpf_map_lookup_elem(&flows, &k);
	if (f) {
		f->last_ns = now;
		__sync_val_compare_and_swap(&f->state, F_RACING, F_DIRECT);	/* step 4: the original won */
		__sync_val_compare_and_swap(&f->state, F_CHOSEN, F_CHOSEN_OK);	/* the chosen source works */
		if (runs_elsewhere(f, k.local)) {
			/* the losing attempt from the application's own address */
			if ((p.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK)) {
				struct reset r = { p.ack, 1 };

				bpf_map_update_elem(&resets, &k, &r, BPF_ANY);
			}
			count(S_LOSER_DROPPED);
			return TC_ACT_SHOT;
		}
		if (f->state != F_CHOSEN_OK)
			note_seen(k.peer, k.local, now);
		return TC_ACT_UNSPEC;
	}
	a = bpf_map_lookup_elem(&alts, &k);
	if (a) {
		struct fkey ok;
		__u8 orig[16];

		addr_copy(orig, a->orig);
		fkey_of(&ok, orig, k.peer, k.lport, k.pport, k.proto);
		f = bpf_map_lookup_elem(&flows, &ok);
		if (f && __sync_val_compare_and_swap(&f->state, F_RACING, F_CLAIMED) == F_RACING) {
			addr_copy(f->src, k.local);	/* step 4: this copy won */
			f->state = F_REWRITTEN;
		}
		if (f && (f->state == F_REWRITTEN || f->state == F_TIMED || f->state == F_CACHED) &&
		    addr_eq(f->src, k.local)) {
			f->last_ns = now;
			note_seen(k.peer, k.local, now);
			if (!set_addr(skb, &p, 24, k.local, orig))
				count(S_REWRITE_IN);
			return TC_ACT_UNSPEC;
		}
		count(S_LOSER_TO_KERNEL);	/* no socket there: the kernel resets it */
		return TC_ACT_UNSPEC;
	}
	note_seen(k.peer, k.local, now);
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
