namespace Tessera.Quantization;

/// <summary>Q8_1: blocks of 32 = { f16 d; f16 s = d * sum(qs); int8 qs[32] } (36 bytes). The vec-dot type of Q4_1 and Q5_1.</summary>
internal static unsafe class Q8_1
{
    public const int BlockSize = 32, BlockBytes = 36;

    /// <summary>llama.cpp's x86 <c>quantize_row_q8_1</c>: as <see cref="Q8_0.Quantize"/> (127/amax, ties to even), plus s = f16(sum(q) * d) with the unrounded d.</summary>
    public static void Quantize(float* x, byte* dst, int n)
    {
        for (int i = 0; i < n / BlockSize; i++)
        {
            byte* b = dst + i * BlockBytes;
            sbyte* qs = (sbyte*)(b + 4);
            float d = Q8_0.QuantizeBlock(x + i * BlockSize, qs);
            int sum = 0;
            for (int j = 0; j < BlockSize; j++) sum += qs[j];
            Fp16.Store(b, d);
            Fp16.Store(b + 2, sum * d);
        }
    }
}
