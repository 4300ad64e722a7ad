using NUnit.Framework;
using Tessera.Backends.Cuda;
using Tessera.Interop;
using Tessera.Interop.Kernels;

namespace Tessera.Tests.Cuda;

/// <summary>Driver behaviour that needs a CUDA device (a GPU or the CUDA emulator): Ignored with the reason elsewhere.</summary>
[Category("Cuda")]  // run a second time on the CUDA emulator by ./build.sh test
public class CudaDeviceTests
{
    [Test]
    public void Memory_round_trips_and_fills()
    {
        var b = CudaDevice.Require();
        using var stream = new CudaStream(b.Context);
        using var buf = new DeviceBuffer<float>(b.Context, 1000);
        var data = Enumerable.Range(0, 1000).Select(i => i * 0.5f).ToArray();
        buf.Upload(data, stream);
        var back = new float[1000];
        buf.Download(back, stream);
        Assert.That(back, Is.EqualTo(data));
        buf.Memory.Fill(0, stream);
        buf.Download(back.AsSpan(10, 5), stream, 10);
        Assert.That(back.Skip(10).Take(5), Is.All.EqualTo(0f));

        // Pinned host memory: device -> pinned -> device -> host.
        using var pinned = new PinnedBuffer(b.Context, 4000);
        buf.Upload(data, stream);
        pinned.DownloadAsync(buf.Memory, 0, 4000, stream);
        stream.Synchronize();
        Assert.That(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(pinned.Span).ToArray(), Is.EqualTo(data));
        using var other = new DeviceBuffer<float>(b.Context, 1000);
        pinned.UploadAsync(other.Memory, 0, 4000, stream);
        other.Download(back, stream);
        Assert.That(back, Is.EqualTo(data));
    }

    [Test]
    public void Bad_ptx_fails_with_the_jit_log()
    {
        var b = CudaDevice.Require();
        var e = Assert.Throws<CudaException>(() => new CudaModule(b.Context, "this is not ptx"u8, "broken.ptx"));
        Assert.That(e!.Message, Does.Contain("cuModuleLoadDataEx").And.Contain("broken.ptx"));
    }

    [Test]
    public void Every_kernel_image_loads_and_every_entry_point_resolves()
    {
        var b = CudaDevice.Require();
        using var lib = new KernelLibrary(b.Context, KernelImages.Load);
        string suffix = $".sm{lib.Arch}.ptx";
        var files = KernelImages.Names.Where(n => n.EndsWith(suffix, StringComparison.Ordinal)).Select(n => n[..^suffix.Length]).ToArray();
        Assert.That(files, Has.Length.GreaterThanOrEqualTo(12), "kernel files embedded for this architecture");
        int entries = 0;
        foreach (string file in files)
        {
            string ptx = System.Text.Encoding.UTF8.GetString(KernelImages.Load(file + suffix)!);
            foreach (System.Text.RegularExpressions.Match e in System.Text.RegularExpressions.Regex.Matches(ptx, @"\.entry\s+(\w+)"))
            {
                lib.Module(file).Function(e.Groups[1].Value);
                entries++;
            }
        }
        Assert.That(entries, Is.GreaterThanOrEqualTo(30), "entry points found in the PTX");
    }

    [Test]
    public void Every_kernel_image_loads_and_reports_no_local_memory()
    {
        var b = CudaDevice.RequireHardware();
        using var lib = new KernelLibrary(b.Context, KernelImages.Load);
        foreach (var (file, entry) in new[] { ("add", "add_f32"), ("gemv", "gemv_q4_k"), ("gemv", "gemv_q6_k"), ("gemv", "gemv_f16"),
                     ("attention_decode", "attention_decode_f16_partial"), ("rmsnorm", "rmsnorm_f32"), ("argmax", "argmax_f32") })
        {
            var f = lib.Module(file).Function(entry);
            Assert.That(f.Registers, Is.GreaterThan(0), entry);
            Assert.That(f.LocalBytes, Is.Zero, $"{entry} uses local memory (spills)");
        }
    }

    [Test]
    public void Captured_graph_replays_the_kernels()
    {
        var b = CudaDevice.Require();
        using var lib = new KernelLibrary(b.Context, KernelImages.Load);
        var add = new Add(lib);
        using var stream = new CudaStream(b.Context);
        using var acc = new DeviceBuffer<float>(b.Context, 333);
        using var x = new DeviceBuffer<float>(b.Context, 333);
        acc.Upload(new float[333], stream);
        x.Upload(Enumerable.Repeat(1.5f, 333).ToArray(), stream);
        stream.Synchronize();
        stream.BeginCapture();
        add.Launch(stream, acc.Span, x.Span, 333);
        using var graph = stream.EndCapture();
        using var start = new CudaEvent(b.Context);
        using var end = new CudaEvent(b.Context);
        start.Record(stream);
        for (int i = 0; i < 4; i++) graph.Launch(stream);
        end.Record(stream);
        Assert.That(end.ElapsedSince(start), Is.GreaterThanOrEqualTo(0f));
        var r = new float[333];
        acc.Download(r, stream);
        Assert.That(r, Is.All.EqualTo(6f), "four replays of acc += 1.5");
    }

    [Test]
    public void Argmax_picks_the_lowest_index_of_the_maximum()
    {
        var b = CudaDevice.Require();
        using var lib = new KernelLibrary(b.Context, KernelImages.Load);
        using var stream = new CudaStream(b.Context);
        var v = new float[50000];
        for (int i = 0; i < v.Length; i++) v[i] = MathF.Sin(i);
        v[31337] = 5; v[40000] = 5;
        using var x = new DeviceBuffer<float>(b.Context, v.Length);
        using var o = new DeviceBuffer<int>(b.Context, 1);
        x.Upload(v, stream);
        new Argmax(lib).Launch(stream, x.Span, v.Length, o.Span);
        var r = new int[1];
        o.Download(r, stream);
        Assert.That(r[0], Is.EqualTo(31337));
    }
}
