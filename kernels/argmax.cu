// Greedy sampling on the device: out[0] = index of the largest of x[0..n), the lowest index on ties (as the CPU).
// One block (blockDim a multiple of 32, <= 1024).
#include "common.cuh"

extern "C" __global__ void argmax_f32(const float* __restrict__ x, int n, int* __restrict__ out) {
    __shared__ float best_v[32];
    __shared__ int best_i[32];
    float v = -INFINITY;
    int idx = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float xi = x[i];
        if (xi > v) { v = xi; idx = i; }  // strided ascending: first hit per thread is its lowest index
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) { v = ov; idx = oi; }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { best_v[warp] = v; best_i[warp] = idx; }
    __syncthreads();
    if (warp == 0) {
        const int nw = blockDim.x >> 5;
        v = lane < nw ? best_v[lane] : -INFINITY;
        idx = lane < nw ? best_i[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, v, o);
            const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
            if (ov > v || (ov == v && oi < idx)) { v = ov; idx = oi; }
        }
        if (lane == 0) out[0] = idx == 0x7fffffff ? 0 : idx;
    }
}
