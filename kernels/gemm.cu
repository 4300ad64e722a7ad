// Matrix products for prefill on tensor cores: y[t, r] = sum_c W[r, c] * x[t, c] for t < tokens, r < rows.
// mma.sync m16n8k16 with float32 accumulation. A = a 16 x 16 tile of W (row-major: k contiguous), B = a 16 x 8 tile
// of x^T ("col": k contiguous per token), so the accumulator is (weight row, token).
// Block: 128 threads = 4 warps in 2 x 2, a 64 weight rows x 64 tokens output tile, each warp 32 x 32
// (2 m16 tiles x 4 n8 tiles). K advances by 32 per stage; the next stage is read from global memory into registers
// while the tensor cores work on the current one in shared memory.
// Conversions into the 16-bit shared tiles:
//   gemm_f16:  W as is, x rounded to F16   (the CPU backend's F16 dot product, so only the summation order differs)
//   gemm_bf16: W as is, x rounded to BF16  (likewise)
//   gemm_q8_0, gemm_q4_0, gemm_q4_k, gemm_q6_k: W dequantized (float) then rounded to F16, x rounded to F16.
// Grid: (ceil(rows / 64), ceil(tokens / 64)). Any rows, tokens; cols a whole number of the format's blocks (32 or
// 256 values for quantized formats, any count for F16/BF16: the tail of the last K stage is zero-filled).
#include "common.cuh"

#define GEMM_BM 64
#define GEMM_BN 64
#define GEMM_BK 32
// Shared row stride in 16-bit elements: 40 (20 words) makes the 8 rows x 4 words of a fragment load fall in 32
// distinct banks, and keeps every row 16-byte aligned for the uint4 stores.
#define GEMM_LD (GEMM_BK + 8)

// Each thread fills 16 consecutive k of one row (W) and one token (x) per stage: row / token = tid / 2,
// k offset = (tid & 1) * 16. 128 threads x 16 = 64 x 32 per tile.

__device__ __forceinline__ uint32_t gemm_pack_f16(float a, float b) {
    return (uint32_t)__half_as_ushort(__float2half_rn(a)) | ((uint32_t)__half_as_ushort(__float2half_rn(b)) << 16);
}

__device__ __forceinline__ uint32_t gemm_pack_bf16(float a, float b) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(a)) | ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(b)) << 16);
}

template <bool BF16>
__device__ __forceinline__ uint32_t gemm_pack(float a, float b) {
    return BF16 ? gemm_pack_bf16(a, b) : gemm_pack_f16(a, b);
}

// 16 floats -> 8 packed 16-bit pairs.
template <bool BF16>
__device__ __forceinline__ void gemm_pack16(const float* f, uint32_t* out) {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = gemm_pack<BF16>(f[2 * i], f[2 * i + 1]);
}

// x: 16 floats of token t from column k (zeros past tokens / cols).
template <bool BF16>
__device__ __forceinline__ void gemm_load_x(const float* __restrict__ x, int tokens, int cols, int t, int k, uint32_t* out) {
    float f[16];
    if (t < tokens && (cols & 3) == 0 && k + 16 <= cols) {
        const float4* p = (const float4*)(x + (long)t * cols + k);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float4 v = p[i];
            f[4 * i] = v.x; f[4 * i + 1] = v.y; f[4 * i + 2] = v.z; f[4 * i + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < 16; ++i) f[i] = (t < tokens && k + i < cols) ? x[(long)t * cols + k + i] : 0.0f;
    }
    gemm_pack16<BF16>(f, out);
}

// Dense 16-bit W (F16 or BF16 bits, stored as is): 16 values of row r from column k.
__device__ __forceinline__ void gemm_load_w16(const uint16_t* __restrict__ w, int rows, int cols, int r, int k, uint32_t* out) {
    if (r < rows && (cols & 7) == 0 && k + 16 <= cols) {
        const uint4* p = (const uint4*)(w + (long)r * cols + k);
        const uint4 a = p[0], b = p[1];
        out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
        out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
    } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t lo = (r < rows && k + 2 * i < cols) ? w[(long)r * cols + k + 2 * i] : 0;
            const uint32_t hi = (r < rows && k + 2 * i + 1 < cols) ? w[(long)r * cols + k + 2 * i + 1] : 0;
            out[i] = lo | (hi << 16);
        }
    }
}

// Quantized W: 16 values (k % 16 == 0, inside one 32-value block or sub-block) of the row at wr, as floats.
__device__ __forceinline__ void gemm_deq_q8_0(const uint8_t* wr, int k, float* f) {
    const uint8_t* blk = wr + (k >> 5) * 34;
    const float d = ts_half_at(blk);
    const uint16_t* q = (const uint16_t*)(blk + 2 + (k & 31));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint16_t v = q[i];
        f[2 * i] = d * (float)(int8_t)(v & 0xff);
        f[2 * i + 1] = d * (float)(int8_t)(v >> 8);
    }
}

// Q4_0: value j < 16 is the low nibble of q[j], value j + 16 its high nibble.
__device__ __forceinline__ void gemm_deq_q4_0(const uint8_t* wr, int k, float* f) {
    const uint8_t* blk = wr + (k >> 5) * 18;
    const float d = ts_half_at(blk);
    const uint16_t* q = (const uint16_t*)(blk + 2);
    const int shift = (k & 16) ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const uint16_t v = q[i];
        f[2 * i] = d * (float)((int)((v >> shift) & 15) - 8);
        f[2 * i + 1] = d * (float)((int)((v >> (8 + shift)) & 15) - 8);
    }
}

// Q4_K: sub-block j = (k % 256) / 32 with 6-bit scale s and min m: value = d * s * nibble - dmin * m.
__device__ __forceinline__ void gemm_deq_q4_k(const uint8_t* wr, int k, float* f) {
    const uint8_t* blk = wr + (k >> 8) * 144;
    const int j = (k & 255) >> 5;
    const uint8_t* sc = blk + 4;
    int s, m;  // get_scale_min_k4
    if (j < 4) { s = sc[j] & 63; m = sc[j + 4] & 63; }
    else { s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4); m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4); }
    const float d = ts_half_at(blk) * s, mn = ts_half_at(blk + 2) * m;
    const uint32_t* q = (const uint32_t*)(blk + 16 + (j >> 1) * 32 + (k & 16));
    const int shift = (j & 1) * 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint32_t v = q[i];
#pragma unroll
        for (int b = 0; b < 4; ++b) f[4 * i + b] = d * (float)((v >> (8 * b + shift)) & 15) - mn;
    }
}

// Q6_K: sub-block j: n = j / 4 picks the 128-value half, g = j % 4 the group of 32 (ggml's q1..q4); each 16 values
// have their own int8 scale.
__device__ __forceinline__ void gemm_deq_q6_k(const uint8_t* wr, int k, float* f) {
    const uint8_t* blk = wr + (k >> 8) * 210;
    const int j = (k & 255) >> 5, n = j >> 2, g = j & 3, l0 = k & 16;
    const uint8_t* ql = blk + n * 64 + (g & 1) * 32 + l0;
    const uint8_t* qh = blk + 128 + n * 32 + l0;
    const float ds = ts_half_at(blk + 208) * (float)((const int8_t*)(blk + 192))[n * 8 + 2 * g + (l0 >> 4)];
    const int lshift = (g >> 1) * 4, hshift = 2 * g;
#pragma unroll
    for (int l = 0; l < 16; ++l)
        f[l] = ds * (float)((((ql[l] >> lshift) & 15) | (((qh[l] >> hshift) & 3) << 4)) - 32);
}

// Format tags: 0 f16, 1 bf16, 2 q8_0, 3 q4_0, 4 q4_k, 5 q6_k.
template <int FMT>
__device__ __forceinline__ void gemm_load_w(const void* __restrict__ w, long row_bytes, int rows, int cols, int r, int k, uint32_t* out) {
    if (FMT <= 1) {
        gemm_load_w16((const uint16_t*)w, rows, cols, r, k, out);
    } else if (r >= rows) {  // quantized cols are whole blocks, so only the row can be out of range
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = 0;
    } else {
        const uint8_t* wr = (const uint8_t*)w + r * row_bytes;
        float f[16];
        if (FMT == 2) gemm_deq_q8_0(wr, k, f);
        else if (FMT == 3) gemm_deq_q4_0(wr, k, f);
        else if (FMT == 4) gemm_deq_q4_k(wr, k, f);
        else gemm_deq_q6_k(wr, k, f);
        gemm_pack16<false>(f, out);
    }
}

template <bool BF16>
__device__ __forceinline__ void gemm_mma(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
#ifdef TESSERA_EMU
    ::emu::mma_m16n8k16(c, a, b0, b1, BF16);
#else
    if (BF16)
        asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

template <int FMT>
__device__ __forceinline__ void gemm_body(const void* __restrict__ w, const float* __restrict__ x, float* __restrict__ y,
                                          int rows, int cols, int tokens, long row_bytes) {
    constexpr bool BF16 = FMT == 1;
    __shared__ __align__(16) uint16_t ws[GEMM_BM * GEMM_LD];
    __shared__ __align__(16) uint16_t xs[GEMM_BN * GEMM_LD];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t4 = lane & 3;
    const int bm = blockIdx.x * GEMM_BM, bn = blockIdx.y * GEMM_BN;
    const int wm = (warp & 1) * 32, wn = (warp >> 1) * 32;
    const int lr = tid >> 1, lk = (tid & 1) * 16;  // this thread's row/token and k offset in a stage

    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    uint32_t wreg[8], xreg[8];
    gemm_load_w<FMT>(w, row_bytes, rows, cols, bm + lr, lk, wreg);
    gemm_load_x<BF16>(x, tokens, cols, bn + lr, lk, xreg);
    for (int k0 = 0; k0 < cols; k0 += GEMM_BK) {
        uint4* wd = (uint4*)(ws + lr * GEMM_LD + lk);
        uint4* xd = (uint4*)(xs + lr * GEMM_LD + lk);
        wd[0] = make_uint4(wreg[0], wreg[1], wreg[2], wreg[3]);
        wd[1] = make_uint4(wreg[4], wreg[5], wreg[6], wreg[7]);
        xd[0] = make_uint4(xreg[0], xreg[1], xreg[2], xreg[3]);
        xd[1] = make_uint4(xreg[4], xreg[5], xreg[6], xreg[7]);
        __syncthreads();
        if (k0 + GEMM_BK < cols) {  // next stage into registers; its latency hides behind the mma below
            gemm_load_w<FMT>(w, row_bytes, rows, cols, bm + lr, k0 + GEMM_BK + lk, wreg);
            gemm_load_x<BF16>(x, tokens, cols, bn + lr, k0 + GEMM_BK + lk, xreg);
        }
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; kk += 16) {
            uint32_t a[2][4];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const uint16_t* p = ws + (wm + mi * 16 + g) * GEMM_LD + kk + 2 * t4;
                a[mi][0] = *(const uint32_t*)p;                     // (row g,     k 2t, 2t+1)
                a[mi][1] = *(const uint32_t*)(p + 8 * GEMM_LD);     // (row g + 8, k 2t, 2t+1)
                a[mi][2] = *(const uint32_t*)(p + 8);               // (row g,     k 2t+8, 2t+9)
                a[mi][3] = *(const uint32_t*)(p + 8 * GEMM_LD + 8); // (row g + 8, k 2t+8, 2t+9)
            }
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) {
                const uint16_t* p = xs + (wn + ni * 8 + g) * GEMM_LD + kk + 2 * t4;
                const uint32_t b0 = *(const uint32_t*)p, b1 = *(const uint32_t*)(p + 8);  // (k 2t, 2t+1), (k 2t+8, 2t+9); token g
#pragma unroll
                for (int mi = 0; mi < 2; ++mi) gemm_mma<BF16>(acc[mi][ni], a[mi], b0, b1);
            }
        }
        __syncthreads();  // the tiles are overwritten by the next stage
    }

    // Accumulator (e = 0..3): weight row g (+8 for e >= 2), token 2t (+1 for odd e).
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = bm + wm + mi * 16 + g + (e >> 1) * 8;
                const int t = bn + wn + ni * 8 + 2 * t4 + (e & 1);
                if (r < rows && t < tokens) y[(long)t * rows + r] = acc[mi][ni][e];
            }
}

#define GEMM_ENTRY(name, fmt)                                                                              \
    extern "C" __global__ void __launch_bounds__(128) name(const void* __restrict__ w, const float* __restrict__ x, \
        float* __restrict__ y, int rows, int cols, int tokens, long row_bytes) {                           \
        gemm_body<fmt>(w, x, y, rows, cols, tokens, row_bytes);                                            \
    }

GEMM_ENTRY(gemm_f16, 0)
GEMM_ENTRY(gemm_bf16, 1)
GEMM_ENTRY(gemm_q8_0, 2)
GEMM_ENTRY(gemm_q4_0, 3)
GEMM_ENTRY(gemm_q4_k, 4)
GEMM_ENTRY(gemm_q6_k, 5)
