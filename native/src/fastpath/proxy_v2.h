// PROXY protocol v2 on the native fast path: the header the outer sends in front of a client's
// bytes, and the parse the inner does before it dials the app. Byte for byte what
// shared/proxy-protocol/v2.ts writes and accepts, so a connection looks the same on either path.
//
// The parser only recognises; it never refuses. Anything it does not accept in full (an unknown
// version, a truncated or oversized header) is handed to the JavaScript path with the bytes read,
// where shared/proxy-protocol/v2.ts refuses it with the usual metrics and log line.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>

namespace enclaver {

// Largest header accepted, as MAX_HEADER_BYTES in v2.ts (addresses plus room for TLVs).
constexpr size_t kMaxProxyHeaderBytes = 16 + 536 + 1024;

struct ProxyV2Header {
  size_t consumed = 0;
  bool has_addresses = false;  // PROXY command with TCP4/TCP6 addresses
  sockaddr_storage source{};
  sockaddr_storage destination{};
};

enum class ProxyV2Parse { kIncomplete, kComplete, kNotAccepted };

ProxyV2Parse ParseProxyV2(const char* data, size_t length, ProxyV2Header* out);

// A PROXY command for IP addresses of one family (IPv4-mapped IPv6 counts as IPv4), else LOCAL.
std::string EncodeProxyV2(const sockaddr_storage* source, const sockaddr_storage* destination);

// "1.2.3.4:5" / "[::1]:5" as shared/tcp-proxy writes a client address; empty for non-IP.
std::string DescribeIpEndpoint(const sockaddr_storage& address);

}  // namespace enclaver
