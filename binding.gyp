{
  "targets": [
    {
      "target_name": "outrigger_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/slab.cc",
        "native/writev.cc",
        "native/affinity.cc",
        "native/listen.cc",
        "native/origdst.cc",
        "native/fdpass.cc",
        "native/tls_tickets.cc",
        "native/tls_conn.cc",
        "native/tls_client.cc",
        "native/splice.cc",
        "native/memory.cc",
        "native/read.cc",
        "native/h1parse.cc",
        "native/crash.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
    }
  ]
}
