using NUnit.Framework;
using Tessera.Interop;
using Tessera.Interop.Kernels;

namespace Tessera.Tests.Cuda;

/// <summary>Launchers check shapes, sizes and alignment before anything reaches the driver; these checks need no GPU
/// (views with made-up addresses are never dereferenced).</summary>
public class LauncherValidationTests
{
    private static DeviceSpan<T> View<T>(long length, ulong address = 0x10000) where T : unmanaged => new(address, length);

    [Test]
    public void Gemv_accepts_a_consistent_call() =>
        Assert.DoesNotThrow(() => Gemv.Check(WeightFormat.Q4_K, View<byte>(64 * 8 * 144), 64, 2048, View<float>(3 * 2048), View<float>(3 * 64), 3));

    [Test]
    public void Gemv_rejects_a_short_weight()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemv.Check(WeightFormat.Q8_0, View<byte>(10 * 34 * 2 - 1), 10, 64, View<float>(64), View<float>(10), 1));
        Assert.That(e!.Message, Does.Contain("gemv_q8_0").And.Contain("w holds"));
    }

    [Test]
    public void Gemv_rejects_cols_that_are_not_whole_blocks() =>
        Assert.That(Assert.Throws<ArgumentException>(() => Gemv.Check(WeightFormat.Q4_K, View<byte>(1 << 20), 4, 300, View<float>(300), View<float>(4), 1))!.Message,
            Does.Contain("multiple of 256"));

    [Test]
    public void Gemv_rejects_misaligned_activations() =>
        Assert.That(Assert.Throws<ArgumentException>(() => Gemv.Check(WeightFormat.F16, View<byte>(4 * 64 * 2), 4, 64, View<float>(64, 0x10004), View<float>(4), 1))!.Message,
            Does.Contain("16-byte aligned"));

    [Test]
    public void Gemv_rejects_a_short_output() =>
        Assert.Throws<ArgumentException>(() => Gemv.Check(WeightFormat.F32, View<byte>(4 * 8 * 4), 4, 8, View<float>(16), View<float>(7), 2));

    [Test]
    public void Gemm_accepts_a_consistent_call() =>
        Assert.DoesNotThrow(() => Gemm.Check(WeightFormat.Q6_K, View<byte>(130 * 3 * 210), 130, 768, View<float>(19 * 768), View<float>(19 * 130), 19));

    [Test]
    public void Gemm_rejects_f32_weights_which_stay_on_gemv() =>
        Assert.That(Assert.Throws<ArgumentException>(() => Gemm.Check(WeightFormat.F32, View<byte>(64 * 64 * 4), 64, 64, View<float>(2 * 64), View<float>(2 * 64), 2))!.Message,
            Does.Contain("gemm_f32").And.Contain("Gemv"));

    [Test]
    public void Gemm_rejects_a_short_output_and_misaligned_weights()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => Gemm.Check(WeightFormat.F16, View<byte>(64 * 64 * 2), 64, 64, View<float>(3 * 64), View<float>(3 * 64 - 1), 3))!.Message,
            Does.Contain("gemm_f16").And.Contain("y"));
        Assert.That(Assert.Throws<ArgumentException>(() => Gemm.Check(WeightFormat.Q4_K, View<byte>(1 << 20, 0x10002), 4, 256, View<float>(2 * 256), View<float>(8), 2))!.Message,
            Does.Contain("4-byte aligned"));
    }

    [Test]
    public void FlashAttention_checks_head_dim_and_block_table()
    {
        // positions 0..36 (start 5 + 32 rows) span pages 0..2: the table needs 3 entries.
        Assert.DoesNotThrow(() => FlashAttention.Check(View<float>(32 * 4 * 64), View<Half>(3 * 16 * 128), View<Half>(3 * 16 * 128), View<int>(3),
            View<float>(32 * 4 * 64), 32, 4, 2, 64, 5));
        Assert.That(Assert.Throws<ArgumentException>(() => FlashAttention.Check(View<float>(32 * 4 * 64), View<Half>(3 * 16 * 128), View<Half>(3 * 16 * 128), View<int>(2),
            View<float>(32 * 4 * 64), 32, 4, 2, 64, 5))!.Message, Does.Contain("flash_attention_f16").And.Contain("blockTable"));
        Assert.Throws<ArgumentOutOfRangeException>(() => FlashAttention.Check(View<float>(1 << 20), View<Half>(1 << 20), View<Half>(1 << 20), View<int>(64),
            View<float>(1 << 20), 2, 2, 2, 512, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => FlashAttention.Check(View<float>(1 << 20), View<Half>(1 << 20), View<Half>(1 << 20), View<int>(64),
            View<float>(1 << 20), 2, 2, 2, 63, 0));
    }

    [Test]
    public void FlashAttention_paged_checks_tiles_pools_and_block_size()
    {
        // 21 rows in 3 tiles, 4/2 heads of 64, 10 blocks of 16 positions: pools of 10 x 16 x 128 halves.
        DeviceSpan<Half> Pool(long halves) => View<Half>(halves);
        Assert.DoesNotThrow(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(21), 3,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 2, 64, 16));
        Assert.That(Assert.Throws<ArgumentException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(20), 3,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 2, 64, 16))!.Message, Does.Contain("flash_attention_f16_paged").And.Contain("tiles"));
        Assert.That(Assert.Throws<ArgumentException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128 - 1), Pool(10 * 16 * 128 - 1), View<int>(21), 3,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 2, 64, 16))!.Message, Does.Contain("whole blocks"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(21), 3,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 2, 64, 12))!.Message, Does.Contain("power of two"));
        Assert.Throws<ArgumentOutOfRangeException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(1 << 10), 22,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 2, 64, 16));  // more tiles than rows
        Assert.Throws<ArgumentException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(21), 3,
            View<int>(10), View<float>(21 * 4 * 64 - 1), 21, 4, 2, 64, 16));  // short output
        Assert.Throws<ArgumentException>(() => FlashAttention.CheckPaged(View<float>(21 * 4 * 64), Pool(10 * 16 * 128), Pool(10 * 16 * 128), View<int>(21), 3,
            View<int>(10), View<float>(21 * 4 * 64), 21, 4, 3, 64, 16));  // 4 heads over 3 kv heads
    }

    [Test]
    public void KvAppend_paged_checks_slots_and_pools()
    {
        Assert.DoesNotThrow(() => KvAppend.CheckPaged(View<float>(5 * 128), View<float>(5 * 128), View<Half>(64 * 128), View<Half>(64 * 128), View<int>(5), 5, 128, 64));
        Assert.That(Assert.Throws<ArgumentException>(() => KvAppend.CheckPaged(View<float>(5 * 128), View<float>(5 * 128), View<Half>(64 * 128), View<Half>(64 * 128), View<int>(4), 5, 128, 64))!.Message,
            Does.Contain("kv_append_f16_paged").And.Contain("rowSlot"));
        Assert.That(Assert.Throws<ArgumentException>(() => KvAppend.CheckPaged(View<float>(5 * 128), View<float>(5 * 128), View<Half>(64 * 128), View<Half>(64 * 128 - 1), View<int>(5), 5, 128, 64))!.Message,
            Does.Contain("vPool"));
        Assert.Throws<ArgumentException>(() => KvAppend.CheckPaged(View<float>(5 * 128 - 1), View<float>(5 * 128), View<Half>(64 * 128), View<Half>(64 * 128), View<int>(5), 5, 128, 64));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvAppend.CheckPaged(View<float>(5 * 128), View<float>(5 * 128), View<Half>(64 * 128), View<Half>(64 * 128), View<int>(5), 5, 128, 0));
    }

    [Test]
    public void Rope_rows_needs_a_position_per_row()
    {
        Assert.DoesNotThrow(() => Rope.CheckRows(View<float>(3 * 2 * 64), 3, 2, 64, View<int>(3), 10000f));
        Assert.That(Assert.Throws<ArgumentException>(() => Rope.CheckRows(View<float>(3 * 2 * 64), 3, 2, 64, View<int>(2), 10000f))!.Message, Does.Contain("positions"));
        Assert.Throws<ArgumentException>(() => Rope.CheckRows(View<float>(3 * 2 * 64), 3, 2, 64, default, 10000f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.CheckRows(View<float>(70000 * 2 * 64), 70000, 2, 64, View<int>(70000), 10000f));
    }

    [Test]
    public void SampleTopK_limits_candidates_and_checks_options()
    {
        Assert.DoesNotThrow(() => SampleTopK.Check(View<float>(128256), 128256, 40, 0.95f, 0.05f, 0.8f, 0.5, View<int>(1)));
        Assert.DoesNotThrow(() => SampleTopK.Check(View<float>(128256), 128256, 0, 1f, 0f, 0f, 0.5, View<int>(1)));  // greedy: 1 candidate
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => SampleTopK.Check(View<float>(50000), 50000, 0, 0.9f, 0f, 1f, 0.5, View<int>(1)))!.Message,
            Does.Contain("sample_topk_f32").And.Contain("50000 candidates"));
        Assert.Throws<ArgumentOutOfRangeException>(() => SampleTopK.Check(View<float>(100), 100, 40, 0.9f, 0f, 1f, 1.0, View<int>(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => SampleTopK.Check(View<float>(100), 100, 40, 0f, 0f, 1f, 0.5, View<int>(1)));
        Assert.Throws<ArgumentException>(() => SampleTopK.Check(View<float>(99), 100, 40, 0.9f, 0f, 1f, 0.5, View<int>(1)));
    }

    [Test]
    public void Rope_rejects_odd_head_dim_and_short_input()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.Check(View<float>(1000), 1, 2, 7, 0, 10000f));
        Assert.Throws<ArgumentException>(() => Rope.Check(View<float>(255), 1, 2, 128, 0, 10000f));
        Assert.Throws<ArgumentOutOfRangeException>(() => Rope.Check(View<float>(256), 1, 2, 128, 0, float.NaN));
        Assert.DoesNotThrow(() => Rope.Check(View<float>(256), 1, 2, 128, 5, 10000f));
    }

    [Test]
    public void RmsNorm_rejects_bad_eps_and_short_weight()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RmsNorm.Check(View<float>(64), View<float>(64), View<float>(64), 1, 64, float.NaN));
        Assert.Throws<ArgumentException>(() => RmsNorm.Check(View<float>(64), View<float>(63), View<float>(64), 1, 64, 1e-5f));
    }

    [Test]
    public void Attention_checks_grouping_and_cache_length()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => AttentionDecode.Check(View<float>(6 * 64), View<Half>(1 << 20), View<Half>(1 << 20), View<float>(6 * 64),
            View<float>(1 << 20), 1, 6, 4, 64, 0))!.Message, Does.Contain("not a multiple"));
        // positions 0..300 need 301 * kv_dim cached values.
        Assert.Throws<ArgumentException>(() => AttentionDecode.Check(View<float>(4 * 64), View<Half>(300 * 128), View<Half>(301 * 128), View<float>(4 * 64),
            View<float>(1 << 20), 1, 4, 2, 64, 300));
        Assert.DoesNotThrow(() => AttentionDecode.Check(View<float>(4 * 64), View<Half>(301 * 128), View<Half>(301 * 128), View<float>(4 * 64),
            View<float>(AttentionDecode.ScratchFloats(1, 4, 64, 300)), 1, 4, 2, 64, 300));
        Assert.That(AttentionDecode.Splits(255), Is.EqualTo(1));
        Assert.That(AttentionDecode.Splits(256), Is.EqualTo(2));
    }

    [Test]
    public void Embed_rejects_formats_without_a_device_gather_and_too_many_tokens()
    {
        Assert.Throws<NotSupportedException>(() => Embed.Check(WeightFormat.Q4_K, View<byte>(1 << 20), 10, 256, View<int>(4), 4, View<float>(1024)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Embed.Check(WeightFormat.F16, View<byte>(1 << 20), 10, 8, View<int>(70000), 70000, View<float>(70000 * 8)));
    }

    [Test]
    public void Elementwise_launchers_reject_empty_and_short_views()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Add.Check(View<float>(4), View<float>(4), 0));
        Assert.Throws<ArgumentException>(() => SwiGlu.Check(View<float>(4), View<float>(3), 4));
        Assert.Throws<ArgumentException>(() => KvAppend.Check(View<float>(8), View<float>(8), View<Half>(8), View<Half>(7), 1, 8, 0));
        // rows 2 at position 3 with kv_dim 4: the cache must reach (3 + 2) * 4 = 20 halves.
        Assert.DoesNotThrow(() => KvAppend.Check(View<float>(8), View<float>(8), View<Half>(20), View<Half>(20), 2, 4, 3));
        Assert.Throws<ArgumentException>(() => KvAppend.Check(View<float>(8), View<float>(8), View<Half>(19), View<Half>(20), 2, 4, 3));
        Assert.Throws<ArgumentException>(() => Argmax.Check(View<float>(8), 8, View<int>(0)));
    }

    [Test]
    public void Launch_shapes_are_checked()
    {
        Assert.Throws<ArgumentException>(() => new LaunchShape(1, 1, 1, 2048, 1, 1).Validate("k"));
        Assert.Throws<ArgumentException>(() => new LaunchShape(0, 1, 1, 32, 1, 1).Validate("k"));
        Assert.Throws<ArgumentException>(() => new LaunchShape(1, 70000, 1, 32, 1, 1).Validate("k"));
        Assert.DoesNotThrow(() => new LaunchShape(1 << 20, 65535, 1, 1024, 1, 1).Validate("k"));
    }

    [Test]
    public void Views_slice_within_bounds_only()
    {
        var v = View<float>(100, 0x1000);
        Assert.That(v.Slice(10, 90).Pointer, Is.EqualTo(0x1000UL + 40));
        Assert.Throws<ArgumentOutOfRangeException>(() => v.Slice(10, 91));
        Assert.Throws<ArgumentOutOfRangeException>(() => v.Slice(-1, 1));
    }

    [Test]
    public void Architecture_choice_and_row_bytes()
    {
        Assert.That(KernelLibrary.ArchFor((8, 0)), Is.EqualTo(80));
        Assert.That(KernelLibrary.ArchFor((8, 9)), Is.EqualTo(80));
        Assert.That(KernelLibrary.ArchFor((9, 0)), Is.EqualTo(90));
        Assert.Throws<NotSupportedException>(() => KernelLibrary.ArchFor((7, 5)));
        Assert.That(WeightFormats.RowBytes(WeightFormat.Q4_K, 2048), Is.EqualTo(8 * 144));
        Assert.That(WeightFormats.RowBytes(WeightFormat.Q6_K, 256), Is.EqualTo(210));
        Assert.That(WeightFormats.RowBytes(WeightFormat.BF16, 33), Is.EqualTo(66));
        Assert.Throws<ArgumentException>(() => WeightFormats.RowBytes(WeightFormat.Q8_0, 33));
    }
}
