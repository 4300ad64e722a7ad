// The host builds of Tessera's kernels, found by entry-point name (kernels.cpp fills the table).
#pragma once
#include <cstddef>

namespace emu {

inline constexpr const char* kDeviceName = "Tessera CUDA emulator (CPU)";
inline constexpr int kMaxParams = 16;

/// One kernel: its host function, how to call it from a kernelParams array, and its parameters' sizes.
struct KernelInfo {
    const char* name;
    void* fn;
    void (*invoke)(void* fn, void** params);
    int param_count;
    size_t param_sizes[kMaxParams];
    bool param_is_pointer[kMaxParams];
};

/// The kernel named `name`, or null.
const KernelInfo* find_kernel(const char* name);

}  // namespace emu
