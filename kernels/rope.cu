// RoPE in place on x (rows, heads * head_dim). Row r is at position row_pos[r] when row_pos is not null (a ragged
// batch: the rows of several sequences, each at its own position), else at start_pos + r, where start_pos is
// replaced by *pos_ptr when pos_ptr is not null (a captured decode graph reads the position from device memory, so
// one graph serves every step).
// The angle of pair i is pos * theta_scale^i built by i float multiplications, as ggml's rope cache does, then divided
// by factors[i] (Llama 3.1's rope_freqs, Phi-3's LongRoPE factors; null for none) and multiplied by freq_scale (linear
// scaling), so that cos/sin see the same rounded angles as the CPU reference; both are multiplied by attn_factor
// (LongRoPE's magnitude). Grid (heads, rows), block >= head_dim / 2 threads.
#include "common.cuh"

__device__ __forceinline__ float rope_angle(int pos, int i, float theta_scale, const float* __restrict__ factors, float freq_scale) {
    float t = (float)pos;
    for (int k = 0; k < i; ++k) t *= theta_scale;
    return (factors ? t / factors[i] : t) * freq_scale;
}

__device__ __forceinline__ int rope_pos(int start_pos, const int* __restrict__ pos_ptr, const int* __restrict__ row_pos) {
    const int r = blockIdx.y;
    return row_pos ? row_pos[r] : (pos_ptr ? *pos_ptr : start_pos) + r;
}

// Adjacent pairs (2i, 2i+1): llama.cpp's "normal" mode (GGUF).
extern "C" __global__ void rope_f32_adjacent(float* __restrict__ x, int heads, int head_dim, int start_pos, const int* __restrict__ pos_ptr,
                                             const int* __restrict__ row_pos, float theta_scale,
                                         const float* __restrict__ factors, float freq_scale, float attn_factor) {
    const int i = threadIdx.x;
    if (i >= head_dim / 2) return;
    float* v = x + ((long)blockIdx.y * heads + blockIdx.x) * head_dim;
    const float a = rope_angle(rope_pos(start_pos, pos_ptr, row_pos), i, theta_scale, factors, freq_scale);
    const float c = cosf(a) * attn_factor, s = sinf(a) * attn_factor;
    const float x0 = v[2 * i], x1 = v[2 * i + 1];
    v[2 * i] = x0 * c - x1 * s;
    v[2 * i + 1] = x0 * s + x1 * c;
}

// Rotate-half pairs (i, i + d/2): the NeoX / Hugging Face layout.
extern "C" __global__ void rope_f32_half(float* __restrict__ x, int heads, int head_dim, int start_pos, const int* __restrict__ pos_ptr,
                                         const int* __restrict__ row_pos, float theta_scale,
                                         const float* __restrict__ factors, float freq_scale, float attn_factor) {
    const int half = head_dim / 2, i = threadIdx.x;
    if (i >= half) return;
    float* v = x + ((long)blockIdx.y * heads + blockIdx.x) * head_dim;
    const float a = rope_angle(rope_pos(start_pos, pos_ptr, row_pos), i, theta_scale, factors, freq_scale);
    const float c = cosf(a) * attn_factor, s = sinf(a) * attn_factor;
    const float x0 = v[i], x1 = v[i + half];
    v[i] = x0 * c - x1 * s;
    v[i + half] = x0 * s + x1 * c;
}
