/*
 * svm-init's container network: the host's 'N' frame (before 'G') gives the address the
 * engine chose for the container (the veth's MAC, IPv4 address and prefix, gateway, MTU),
 * and the init puts it on eth0, the VM's virtio-net interface, whose frames svm-runtime
 * redirects to and from that veth with tc on the host. Loopback comes up for every
 * container, with or without a network.
 *
 * Included by container.c (one translation unit); uses svm-init.c's fail().
 * Payload, 19 bytes: u8 mac[6], u8 addr[4], u8 prefix, u8 gateway[4], u32 mtu
 * (addresses in network order; gateway 0.0.0.0 = no default route; mtu 0 = leave).
 */
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NET_PAYLOAD_SIZE 19
#define NET_INTERFACE "eth0"

#ifndef SVM_INIT_HOST_TEST
static void if_request(int s, unsigned long request, struct ifreq *ifr, const char *what)
{
	if (ioctl(s, request, ifr))
		fail("network: %s %s: %s", what, ifr->ifr_name, strerror(errno));
}

static void interface_up(int s, const char *name)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if_request(s, SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if_request(s, SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS");
}

static void set_inet(int s, unsigned long request, const char *what, uint32_t addr_be)
{
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, NET_INTERFACE);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = addr_be };
	memcpy(&ifr.ifr_addr, &sin, sizeof sin);
	if_request(s, request, &ifr, what);
}

static int net_socket(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail("network: socket: %s", strerror(errno));
	return s;
}

static void loopback_up(void)
{
	int s = net_socket();
	interface_up(s, "lo");
	close(s);
}

static void configure_network(const uint8_t *p)
{
	uint32_t addr, gateway, mtu = get_le32(p + 15);
	uint8_t prefix = p[10];
	memcpy(&addr, p + 6, 4);
	memcpy(&gateway, p + 11, 4);
	if (prefix > 32)
		fail("network: prefix /%u is not an IPv4 prefix", prefix);
	int s = net_socket();
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, NET_INTERFACE);
	/* The veth's MAC: its peers on the engine's bridge address the container by it. */
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, p, 6);
	if_request(s, SIOCSIFHWADDR, &ifr, "SIOCSIFHWADDR");
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if_request(s, SIOCSIFMTU, &ifr, "SIOCSIFMTU");
	}
	set_inet(s, SIOCSIFADDR, "SIOCSIFADDR", addr);
	set_inet(s, SIOCSIFNETMASK, "SIOCSIFNETMASK", prefix ? htonl(~0u << (32 - prefix)) : 0);
	interface_up(s, NET_INTERFACE);
	if (gateway) {
		struct rtentry rt = { 0 };
		struct sockaddr_in any = { .sin_family = AF_INET }, gw = { .sin_family = AF_INET, .sin_addr.s_addr = gateway };
		memcpy(&rt.rt_dst, &any, sizeof any);
		memcpy(&rt.rt_genmask, &any, sizeof any);
		memcpy(&rt.rt_gateway, &gw, sizeof gw);
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		if (ioctl(s, SIOCADDRT, &rt) && errno != EEXIST)
			fail("network: default route: %s", strerror(errno));
	}
	close(s);
}
#else
/* Host tests: the host's interfaces are not ours to change; say what would be done. */
static void loopback_up(void) {}
static void configure_network(const uint8_t *p)
{
	dprintf(2, "svm-init: network %02x:%02x:%02x:%02x:%02x:%02x %u.%u.%u.%u/%u gw %u.%u.%u.%u mtu %u\n", p[0], p[1],
		p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14], get_le32(p + 15));
}
#endif
