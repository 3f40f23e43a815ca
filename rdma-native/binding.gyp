{
  "targets": [
    {
      "target_name": "rdma_native",
      "sources": ["src/addon.cc", "src/fabric.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "libraries": ["<!@(pkg-config --libs libfabric)"],
      "cflags": ["<!@(pkg-config --cflags libfabric)"]
    }
  ]
}
