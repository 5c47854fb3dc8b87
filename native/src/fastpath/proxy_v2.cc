#include "fastpath/proxy_v2.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace enclaver {

namespace {

constexpr unsigned char kSignature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
constexpr size_t kFixedBytes = 16;

uint16_t ReadPort(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// An IPv4-mapped IPv6 address as the IPv4 address it carries (what v2.ts does with "::ffff:a.b.c.d").
sockaddr_storage Unmapped(const sockaddr_storage& a) {
  if (a.ss_family != AF_INET6) return a;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
  if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) return a;
  sockaddr_storage out{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  v4->sin_family = AF_INET;
  v4->sin_port = v6->sin6_port;
  std::memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
  return out;
}

void PutPort(std::string& out, uint16_t network_order_port) {
  uint16_t host = ntohs(network_order_port);
  out.push_back(static_cast<char>(host >> 8));
  out.push_back(static_cast<char>(host & 0xff));
}

}  // namespace

ProxyV2Parse ParseProxyV2(const char* data, size_t length, ProxyV2Header* out) {
  const auto* b = reinterpret_cast<const unsigned char*>(data);
  size_t compared = length < sizeof(kSignature) ? length : sizeof(kSignature);
  if (std::memcmp(b, kSignature, compared) != 0) return ProxyV2Parse::kNotAccepted;
  if (length < kFixedBytes) return ProxyV2Parse::kIncomplete;
  unsigned version = b[12] >> 4;
  unsigned command = b[12] & 0x0f;
  if (version != 2 || command > 1) return ProxyV2Parse::kNotAccepted;
  size_t body = ReadPort(b + 14);
  if (kFixedBytes + body > kMaxProxyHeaderBytes) return ProxyV2Parse::kNotAccepted;
  if (length < kFixedBytes + body) return ProxyV2Parse::kIncomplete;
  out->consumed = kFixedBytes + body;
  out->has_addresses = false;
  if (command == 0) return ProxyV2Parse::kComplete;  // LOCAL: the sender speaks for itself
  const unsigned char* a = b + kFixedBytes;
  if (b[13] == 0x11) {
    if (body < 12) return ProxyV2Parse::kNotAccepted;  // v2.ts refuses it: let it say so
    auto* src = reinterpret_cast<sockaddr_in*>(&out->source);
    auto* dst = reinterpret_cast<sockaddr_in*>(&out->destination);
    *src = sockaddr_in{};
    *dst = sockaddr_in{};
    src->sin_family = dst->sin_family = AF_INET;
    std::memcpy(&src->sin_addr, a, 4);
    std::memcpy(&dst->sin_addr, a + 4, 4);
    src->sin_port = htons(ReadPort(a + 8));
    dst->sin_port = htons(ReadPort(a + 10));
    out->has_addresses = true;
  } else if (b[13] == 0x21) {
    if (body < 36) return ProxyV2Parse::kNotAccepted;
    auto* src = reinterpret_cast<sockaddr_in6*>(&out->source);
    auto* dst = reinterpret_cast<sockaddr_in6*>(&out->destination);
    *src = sockaddr_in6{};
    *dst = sockaddr_in6{};
    src->sin6_family = dst->sin6_family = AF_INET6;
    std::memcpy(&src->sin6_addr, a, 16);
    std::memcpy(&dst->sin6_addr, a + 16, 16);
    src->sin6_port = htons(ReadPort(a + 32));
    dst->sin6_port = htons(ReadPort(a + 34));
    out->has_addresses = true;
  }
  // UNIX and UNSPEC families carry no IP address: like LOCAL, the connection's own address stands.
  return ProxyV2Parse::kComplete;
}

std::string EncodeProxyV2(const sockaddr_storage* source, const sockaddr_storage* destination) {
  std::string out(reinterpret_cast<const char*>(kSignature), sizeof(kSignature));
  sockaddr_storage src{};
  sockaddr_storage dst{};
  if (source != nullptr) src = Unmapped(*source);
  if (destination != nullptr) dst = Unmapped(*destination);
  bool ip = src.ss_family == AF_INET || src.ss_family == AF_INET6;
  if (source == nullptr || destination == nullptr || !ip || src.ss_family != dst.ss_family) {
    out.append("\x20\x00\x00\x00", 4);  // v2 LOCAL, UNSPEC, no addresses
    return out;
  }
  out.push_back('\x21');  // v2, PROXY
  if (src.ss_family == AF_INET) {
    out.append("\x11\x00\x0c", 3);  // TCP over IPv4, 12 bytes of addresses
    const auto* s = reinterpret_cast<const sockaddr_in*>(&src);
    const auto* d = reinterpret_cast<const sockaddr_in*>(&dst);
    out.append(reinterpret_cast<const char*>(&s->sin_addr), 4);
    out.append(reinterpret_cast<const char*>(&d->sin_addr), 4);
    PutPort(out, s->sin_port);
    PutPort(out, d->sin_port);
  } else {
    out.append("\x21\x00\x24", 3);  // TCP over IPv6, 36 bytes of addresses
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&src);
    const auto* d = reinterpret_cast<const sockaddr_in6*>(&dst);
    out.append(reinterpret_cast<const char*>(&s->sin6_addr), 16);
    out.append(reinterpret_cast<const char*>(&d->sin6_addr), 16);
    PutPort(out, s->sin6_port);
    PutPort(out, d->sin6_port);
  }
  return out;
}

std::string DescribeIpEndpoint(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    return "[" + std::string(text) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return std::string();
}

}  // namespace enclaver
