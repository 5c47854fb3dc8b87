{
  "targets": [
    {
      "target_name": "enclaver_native",
      "sources": [
        "src/addon.cc",
        "src/syscall_error.cc",
        "src/exports.cc",
        "src/fd.cc",
        "src/vsock.cc",
        "src/nsm.cc",
        "src/system.cc",
        "src/pump/pipe_pool.cc",
        "src/pump/connection.cc",
        "src/pump/reactor.cc",
        "src/pump/pump_binding.cc",
        "src/fastpath/proxy_v2.cc",
        "src/fastpath/fast_listener.cc",
        "src/fastpath/fastpath_binding.cc",
        "src/fastpath/tls_tunnel.cc",
        "src/stream/tls_stream.cc",
        "src/stream/plain_stream.cc",
        "src/http/http_parse.cc",
        "src/http/glob.cc",
        "src/http/http_session.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources": [] }]
      ]
    }
  ]
}
