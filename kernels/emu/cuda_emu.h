// The CUDA device language, as far as Tessera's kernels use it, for a host C++ compiler: the emulator compiles
// kernels/*.cu unchanged (common.cuh includes this header instead of the CUDA headers when TESSERA_EMU is defined)
// and runs every thread of a block as a fiber (fiber.h). What this header maps:
//   __global__/__device__/__forceinline__/__launch_bounds__   plain inline functions
//   __shared__                                                static thread_local: one copy per block in flight
//   threadIdx, blockIdx, blockDim, gridDim                     the running fiber's and block's indices
//   __syncthreads, __shfl_sync, __shfl_xor_sync, __ballot_sync  block and warp rendezvous in the fiber scheduler,
//                                                              which checks that every lane of the warp takes part
//   mma.sync m16n8k16 (f16, bf16 -> f32)                       emu::mma_m16n8k16, with the PTX ISA's fragment layout
//   __half, __nv_bfloat16 and their conversions                bit-exact round-to-nearest-even
// Maths (expf, sinf, rsqrtf, ...) is the host's, so results match the GPU's to rounding, not bit for bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "fiber.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

#define threadIdx (::emu::current_thread_index())
#define blockIdx (::emu::current_block()->block_idx)
#define blockDim (::emu::current_block()->block_dim)
#define gridDim (::emu::current_block()->grid_dim)

struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { uint32_t x, y, z, w; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(uint32_t x, uint32_t y, uint32_t z, uint32_t w) { return {x, y, z, w}; }

inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __hiloint2double(int hi, int lo) {
    const uint64_t u = ((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo;
    double d;
    std::memcpy(&d, &u, 8);
    return d;
}

// IEEE binary16 as its bits; conversions through the compiler's _Float16 (round to nearest even, subnormals kept).
struct __half { uint16_t bits; };
struct alignas(4) __half2 { __half x, y; };
inline __half __float2half_rn(float f) {
    const _Float16 h = (_Float16)f;
    __half r;
    std::memcpy(&r.bits, &h, 2);
    return r;
}
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) {
    _Float16 v;
    std::memcpy(&v, &h.bits, 2);
    return (float)v;
}
inline uint16_t __half_as_ushort(__half h) { return h.bits; }
inline __half __ushort_as_half(uint16_t u) { return __half{u}; }
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }

// bfloat16: the top half of a float, rounded to nearest even; NaN stays a (quiet) NaN.
struct __nv_bfloat16 { uint16_t bits; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(uint16_t)((u >> 16) | 0x40u)};
    return {(uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((uint32_t)b.bits << 16); }
inline uint16_t __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline int __popc(uint32_t x) { return __builtin_popcount(x); }

// Fibers of a block share one OS thread, but blocks may run on several: global atomics must be real ones.
inline uint32_t atomicAdd(uint32_t* p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

inline void __syncthreads() { ::emu::sync_block(); }

namespace emu {
// Moves any value of up to 64 bits through the warp's shuffle rendezvous.
template <class T>
inline T shuffle_value(uint32_t mask, T v, int lane_arg, int width, bool xor_mode) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 64 bits");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = warp_shuffle(mask, bits, lane_arg, width, xor_mode);
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}
}  // namespace emu

template <class T>
inline T __shfl_sync(uint32_t mask, T v, int src_lane, int width = 32) {
    return ::emu::shuffle_value(mask, v, src_lane, width, false);
}

template <class T>
inline T __shfl_xor_sync(uint32_t mask, T v, int lane_mask, int width = 32) {
    return ::emu::shuffle_value(mask, v, lane_mask, width, true);
}

inline uint32_t __ballot_sync(uint32_t mask, int predicate) { return ::emu::warp_ballot(mask, predicate != 0); }
