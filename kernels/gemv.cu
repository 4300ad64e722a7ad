// Matrix-vector products for decode: y[b, r] = sum_c W[r, c] * x[b, c] for weights in their file format.
// One warp per weight row, blockDim.x = 32 * rows_per_block; grid (ceil(rows / rows_per_block), batch).
// F16 and BF16: activations rounded to the weight type first, as llama.cpp and the CPU backend do (IBackend.MatMul's
// contract; the rounding is a few ALU operations in a kernel bound by reading the weights).
// Quantized types: activations stay float32 (no q8_1 quantization as in llama.cpp's mmvq): the result differs from
// the CPU reference only by the reference's activation rounding, and decode is bound by reading the weights anyway.
// Quantized row layouts are GGUF's: blocks packed back to back, no padding.
#include "common.cuh"

__device__ __forceinline__ float gemv_round_f16(float x) { return __half2float(__float2half_rn(x)); }
__device__ __forceinline__ float gemv_round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

#define GEMV_PROLOGUE                                                    \
    const int lane = threadIdx.x & 31;                                   \
    const long r = (long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); \
    if (r >= rows) return;                                               \
    const float* xb = x + (long)blockIdx.y * cols;                       \
    float acc = 0.0f;

#define GEMV_EPILOGUE                                                    \
    acc = ts_warp_sum(acc);                                              \
    if (lane == 0) y[(long)blockIdx.y * rows + r] = acc;

extern "C" __global__ void gemv_f32(const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                    int rows, int cols) {
    GEMV_PROLOGUE
    const float* wr = w + r * cols;
    if ((cols & 3) == 0) {  // rows are 16-byte aligned: vector loads
        const float4* w4 = (const float4*)wr;
        const float4* x4 = (const float4*)xb;
        for (int c = lane; c < cols / 4; c += 32) {
            const float4 a = w4[c], b = x4[c];
            acc += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
        }
    } else {
        for (int c = lane; c < cols; c += 32) acc += wr[c] * xb[c];
    }
    GEMV_EPILOGUE
}

extern "C" __global__ void gemv_f16(const __half* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                    int rows, int cols) {
    GEMV_PROLOGUE
    const __half* wr = w + r * cols;
    if ((cols & 7) == 0) {  // 8 halves = 16 bytes per load
        const uint4* w8 = (const uint4*)wr;
        for (int c = lane; c < cols / 8; c += 32) {
            const uint4 u = w8[c];
            const __half2* h = (const __half2*)&u;
            float4 b0 = ((const float4*)xb)[2 * c], b1 = ((const float4*)xb)[2 * c + 1];
            b0 = make_float4(gemv_round_f16(b0.x), gemv_round_f16(b0.y), gemv_round_f16(b0.z), gemv_round_f16(b0.w));
            b1 = make_float4(gemv_round_f16(b1.x), gemv_round_f16(b1.y), gemv_round_f16(b1.z), gemv_round_f16(b1.w));
            const float2 f0 = __half22float2(h[0]), f1 = __half22float2(h[1]);
            const float2 f2 = __half22float2(h[2]), f3 = __half22float2(h[3]);
            acc += f0.x * b0.x + f0.y * b0.y + f1.x * b0.z + f1.y * b0.w
                 + f2.x * b1.x + f2.y * b1.y + f3.x * b1.z + f3.y * b1.w;
        }
    } else {
        for (int c = lane; c < cols; c += 32) acc += __half2float(wr[c]) * gemv_round_f16(xb[c]);
    }
    GEMV_EPILOGUE
}

extern "C" __global__ void gemv_bf16(const uint16_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                     int rows, int cols) {
    GEMV_PROLOGUE
    const uint16_t* wr = w + r * cols;
    if ((cols & 7) == 0) {
        const uint4* w8 = (const uint4*)wr;
        for (int c = lane; c < cols / 8; c += 32) {
            const uint4 u = w8[c];
            const uint32_t p[4] = {u.x, u.y, u.z, u.w};
            const float* xc = xb + 8 * c;
#pragma unroll
            for (int k = 0; k < 4; ++k)
                acc += __uint_as_float(p[k] << 16) * gemv_round_bf16(xc[2 * k])
                     + __uint_as_float(p[k] & 0xffff0000u) * gemv_round_bf16(xc[2 * k + 1]);
        }
    } else {
        for (int c = lane; c < cols; c += 32) acc += ts_bf16_to_float(wr[c]) * gemv_round_bf16(xb[c]);
    }
    GEMV_EPILOGUE
}

// Q8_0: {half d; int8 q[32]} (34 bytes). One lane per block.
extern "C" __global__ void gemv_q8_0(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                     int rows, int cols) {
    GEMV_PROLOGUE
    const int nb = cols / 32;
    const uint8_t* wr = w + r * nb * 34;
    for (int b = lane; b < nb; b += 32) {
        const uint8_t* blk = wr + b * 34;
        const float4* xc = (const float4*)(xb + b * 32);
        const uint16_t* q = (const uint16_t*)(blk + 2);
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint16_t q01 = q[2 * k], q23 = q[2 * k + 1];
            const float4 a = xc[k];
            s += (float)(int8_t)(q01 & 0xff) * a.x + (float)(int8_t)(q01 >> 8) * a.y
               + (float)(int8_t)(q23 & 0xff) * a.z + (float)(int8_t)(q23 >> 8) * a.w;
        }
        acc += ts_half_at(blk) * s;
    }
    GEMV_EPILOGUE
}

// Q4_0: {half d; uint8 q[16]} (18 bytes); value j = d * ((q[j] & 15) - 8), value j + 16 = d * ((q[j] >> 4) - 8).
extern "C" __global__ void gemv_q4_0(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                     int rows, int cols) {
    GEMV_PROLOGUE
    const int nb = cols / 32;
    const uint8_t* wr = w + r * nb * 18;
    for (int b = lane; b < nb; b += 32) {
        const uint8_t* blk = wr + b * 18;
        const float* xc = xb + b * 32;
        const uint16_t* q = (const uint16_t*)(blk + 2);
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint16_t qq = q[k];
            const int lo0 = qq & 15, hi0 = (qq >> 4) & 15, lo1 = (qq >> 8) & 15, hi1 = qq >> 12;
            s += (lo0 - 8) * xc[2 * k] + (lo1 - 8) * xc[2 * k + 1] + (hi0 - 8) * xc[2 * k + 16] + (hi1 - 8) * xc[2 * k + 17];
        }
        acc += ts_half_at(blk) * s;
    }
    GEMV_EPILOGUE
}

// Q4_K: 256 values {half d; half dmin; uint8 scales[12]; uint8 q[128]} (144 bytes), 8 sub-blocks of 32 with
// 6-bit scale and min each. One lane per sub-block so that short rows still occupy the whole warp.
extern "C" __global__ void gemv_q4_k(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                     int rows, int cols) {
    GEMV_PROLOGUE
    const int nb = cols / 256;
    const uint8_t* wr = w + r * nb * 144;
    for (int t = lane; t < nb * 8; t += 32) {
        const int b = t >> 3, j = t & 7;
        const uint8_t* blk = wr + b * 144;
        const uint8_t* sc = blk + 4;
        int s, m;  // get_scale_min_k4
        if (j < 4) { s = sc[j] & 63; m = sc[j + 4] & 63; }
        else { s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4); m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
        const float d = ts_half_at(blk) * s, mn = ts_half_at(blk + 2) * m;
        const uint8_t* q = blk + 16 + (j >> 1) * 32;
        const int shift = (j & 1) * 4;
        const float4* xc = (const float4*)(xb + b * 256 + j * 32);
        float qs = 0.0f, xs = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; ++k) {
            const uint32_t qq = *(const uint32_t*)(q + 4 * k);
            const float4 a = xc[k];
            qs += ((qq >> shift) & 15) * a.x + ((qq >> (8 + shift)) & 15) * a.y
                + ((qq >> (16 + shift)) & 15) * a.z + ((qq >> (24 + shift)) & 15) * a.w;
            xs += a.x + a.y + a.z + a.w;
        }
        acc += d * qs - mn * xs;
    }
    GEMV_EPILOGUE
}

// Q6_K: 256 values {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d} (210 bytes). Work item t = (block, j):
// j / 4 picks the 128-value half, j % 4 the group of 32 within it (ggml's q1..q4).
extern "C" __global__ void gemv_q6_k(const uint8_t* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                     int rows, int cols) {
    GEMV_PROLOGUE
    const int nb = cols / 256;
    const uint8_t* wr = w + r * nb * 210;
    for (int t = lane; t < nb * 8; t += 32) {
        const int b = t >> 3, j = t & 7, n = j >> 2, g = j & 3;
        const uint8_t* blk = wr + b * 210;
        const uint8_t* ql = blk + n * 64 + (g & 1) * 32;
        const uint8_t* qh = blk + 128 + n * 32;
        const int8_t* sc = (const int8_t*)(blk + 192) + n * 8 + 2 * g;
        const int lshift = (g >> 1) * 4, hshift = 2 * g;
        const float d = ts_half_at(blk + 208);
        const float* xc = xb + b * 256 + n * 128 + g * 32;
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
        for (int l = 0; l < 16; ++l) {
            const int q0 = (((ql[l] >> lshift) & 15) | (((qh[l] >> hshift) & 3) << 4)) - 32;
            const int q1 = (((ql[l + 16] >> lshift) & 15) | (((qh[l + 16] >> hshift) & 3) << 4)) - 32;
            s0 += q0 * xc[l];
            s1 += q1 * xc[l + 16];
        }
        acc += d * (sc[0] * s0 + sc[1] * s1);
    }
    GEMV_EPILOGUE
}
