{
  "targets": [
    {
      "target_name": "dma_iommu",
      "sources": [
        "native/addon.cc",
        "native/binding/wraps.cc",
        "native/binding/state.cc",
        "native/binding/errors.cc",
        "native/binding/iommufd_exports.cc",
        "native/binding/vfio_exports.cc",
        "native/binding/misc_exports.cc",
        "native/binding/hot_exports.cc",
        "native/binding/notify_exports.cc",
        "native/ioctl/sys.cc",
        "native/ioctl/iommufd.cc",
        "native/ioctl/vfio.cc",
        "native/ioctl/memory.cc",
        "native/ioctl/notify.cc",
        "native/abi/abi_check.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources=": [] }]
      ]
    }
  ]
}
