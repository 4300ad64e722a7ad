// GeGLU in place (Gemma's feed-forward): gate = gelu_tanh(gate) * up, as llama.cpp's CPU computes it: x rounded to
// F16, GELU of that (tanh form, in float), the result rounded to F16 (ggml's 64K-entry F16 table, evaluated here);
// x <= -10 gives 0 and x >= 10 gives x, as in the table's caller.
#include "common.cuh"

extern "C" __global__ void geglu_f32(float* __restrict__ gate, const float* __restrict__ up, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float x = gate[i];
    float g;
    if (x <= -10.0f) g = 0.0f;
    else if (x >= 10.0f) g = x;
    else {
        const float h = __half2float(__float2half_rn(x));
        g = __half2float(__float2half_rn(0.5f * h * (1.0f + tanhf(0.79788456080286535588f * h * (1.0f + 0.044715f * h * h)))));
    }
    gate[i] = g * up[i];
}
