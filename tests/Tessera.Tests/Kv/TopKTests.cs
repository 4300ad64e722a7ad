using NUnit.Framework;
using Tessera.Kv;

namespace Tessera.Tests.Kv;

/// <summary>The token-pruning top-k against its definition: the k largest scores, ties to the lower index, returned in
/// ascending index order.</summary>
public class TopKTests
{
    private static int[] Naive(float[] x, int k) =>
        [.. Enumerable.Range(0, x.Length).OrderByDescending(i => x[i]).ThenBy(i => i).Take(k).Order()];

    [TestCase(1, 1)]
    [TestCase(7, 3)]
    [TestCase(100, 1)]
    [TestCase(100, 99)]
    [TestCase(1000, 500)]
    [TestCase(4097, 4097)]
    [TestCase(131072, 1000)]
    public void Selects_the_k_largest_with_ties_to_the_lower_index(int n, int k)
    {
        var rng = new Random(n + k);
        // Few distinct values, so ties are everywhere; signed zeros and infinities among them.
        float[] values = [-0f, 0f, 1f, -1f, 0.5f, float.PositiveInfinity, float.NegativeInfinity, 3f];
        var x = Enumerable.Range(0, n).Select(_ => values[rng.Next(values.Length)]).ToArray();
        var got = new int[k];
        TopK.Select(x, k, got);
        Assert.That(got, Is.EqualTo(Naive(x, k)));
    }

    [Test]
    public void Every_k_of_a_small_input()
    {
        var rng = new Random(3);
        var x = Enumerable.Range(0, 37).Select(_ => (float)Math.Round(rng.NextDouble() * 5)).ToArray();
        for (int k = 0; k <= x.Length; k++)
        {
            var got = new int[k];
            TopK.Select(x, k, got);
            Assert.That(got, Is.EqualTo(Naive(x, k)), $"k {k}");
        }
    }

    [Test]
    public void Bad_k_and_NaN_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TopK.Select([1f, 2f], 3, new int[3]));
        var e = Assert.Throws<ArgumentException>(() => TopK.Select([1f, float.NaN, 2f], 1, new int[1]));
        Assert.That(e!.Message, Does.Contain("score 1 is NaN"));
    }
}
