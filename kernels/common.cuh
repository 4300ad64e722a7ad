// Shared device helpers for Tessera's kernels (included, never compiled alone).
// Kernels take every size as an argument: the C# launchers (interop/Kernels) own grid and block shapes.
#pragma once
#ifdef TESSERA_EMU
// The CPU emulator (kernels/emu) compiles these same files with a host compiler.
#include "emu/cuda_emu.h"
#define TS_DYNAMIC_SMEM(type, name) type* name = (type*)::emu::dynamic_smem()
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
// The block's dynamic shared memory (the launch's sharedMemBytes) as an array of `type`.
#define TS_DYNAMIC_SMEM(type, name) extern __shared__ type name[]
#endif

#define TS_WARP 32

__device__ __forceinline__ float ts_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float ts_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (<= 1024); every thread gets the result.
__device__ __forceinline__ float ts_block_sum(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = ts_warp_sum(v);
    __syncthreads();  // part[] may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nwarps ? part[lane] : 0.0f;
    return ts_warp_sum(v);
}

__device__ __forceinline__ float ts_block_max(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    v = ts_warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nwarps ? part[lane] : -INFINITY;
    return ts_warp_max(v);
}

// GGUF blocks are packed without padding (Q8_0 is 34 bytes), so their fields are read through 16-bit loads.
__device__ __forceinline__ float ts_half_at(const uint8_t* p) {
    return __half2float(__ushort_as_half(*(const uint16_t*)p));
}

__device__ __forceinline__ float ts_bf16_to_float(uint16_t b) {
    return __uint_as_float((uint32_t)b << 16);
}
