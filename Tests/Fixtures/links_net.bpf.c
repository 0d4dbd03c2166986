// SPDX-License-Identifier: GPL-2.0
/*
 * links_net.bpf.c - network programs the link tests attach to a veth in a network namespace
 * the test made, and to a cgroup v2 the test mounted. Each counts IPv4 UDP datagrams to port
 * 9999 (LINKS_TEST_PORT), the only traffic the tests send, and lets every packet through.
 *
 * xdp_count:  xdp, Ethernet + IPv4 (no options) + UDP dport 9999 -> xdp_udp; XDP_PASS
 * xdp_other:  xdp, the same into xdp_other_udp (a second XDP program for the same interface)
 * tcx_count:  tcx/ingress, the same on the skb -> tcx_udp; TCX_NEXT (-1: the rest of the chain)
 * cg_egress:  cgroup_skb/egress, IPv4 (the skb starts at the IP header) -> cgroup_udp; 1 (allow)
 *
 * FACTS (clang 21 -target bpf -O2 -g)
 *
 * .bss (NOBITS WA, align 8): xdp_udp, xdp_other_udp, tcx_udp, cgroup_udp (u64 each).
 */
#include "bpfdepot_common.h"
#include <bpf/bpf_endian.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define LINKS_TEST_PORT 9999
#define TCX_NEXT (-1)

__u64 xdp_udp;
__u64 xdp_other_udp;
__u64 tcx_udp;
__u64 cgroup_udp;

/* Ethernet frame between data and end: IPv4 without options carrying UDP to the test port. */
static __always_inline int is_test_frame(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP) && ip->ihl == 5 && ip->protocol == IPPROTO_UDP &&
	       udp->dest == bpf_htons(LINKS_TEST_PORT);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	if (is_test_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		__sync_fetch_and_add(&xdp_udp, 1);
	return XDP_PASS;
}

SEC("xdp")
int xdp_other(struct xdp_md *ctx)
{
	if (is_test_frame((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		__sync_fetch_and_add(&xdp_other_udp, 1);
	return XDP_PASS;
}

SEC("tcx/ingress")
int tcx_count(struct __sk_buff *skb)
{
	if (is_test_frame((void *)(long)skb->data, (void *)(long)skb->data_end))
		__sync_fetch_and_add(&tcx_udp, 1);
	return TCX_NEXT;
}

SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.ihl != 5 || ip.protocol != IPPROTO_UDP)
		return 1;
	if (bpf_skb_load_bytes(skb, sizeof(ip), &udp, sizeof(udp)))
		return 1;
	if (udp.dest == bpf_htons(LINKS_TEST_PORT))
		__sync_fetch_and_add(&cgroup_udp, 1);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
