// Embedding gather: out[i, :] = table[tokens[i], :] as float32, for the table types GGUF files use for embeddings.
// Grid (ceil(dim / blockDim.x), n); tokens are validated by the launcher on the host.
#include "common.cuh"

extern "C" __global__ void embed_f32(const float* __restrict__ table, const int* __restrict__ tokens,
                                     float* __restrict__ out, int dim) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    const long row = tokens[blockIdx.y];
    out[(long)blockIdx.y * dim + c] = table[row * dim + c];
}

extern "C" __global__ void embed_f16(const __half* __restrict__ table, const int* __restrict__ tokens,
                                     float* __restrict__ out, int dim) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    const long row = tokens[blockIdx.y];
    out[(long)blockIdx.y * dim + c] = __half2float(table[row * dim + c]);
}

extern "C" __global__ void embed_bf16(const uint16_t* __restrict__ table, const int* __restrict__ tokens,
                                      float* __restrict__ out, int dim) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    const long row = tokens[blockIdx.y];
    out[(long)blockIdx.y * dim + c] = ts_bf16_to_float(table[row * dim + c]);
}

// Q8_0: blocks of 32 values, {half d; int8 q[32]} = 34 bytes; value = d * q. dim is a multiple of 32.
extern "C" __global__ void embed_q8_0(const uint8_t* __restrict__ table, const int* __restrict__ tokens,
                                      float* __restrict__ out, int dim) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    const long row = tokens[blockIdx.y];
    const uint8_t* b = table + (row * (dim / 32) + c / 32) * 34;
    out[(long)blockIdx.y * dim + c] = ts_half_at(b) * (float)(int8_t)b[2 + (c & 31)];
}
