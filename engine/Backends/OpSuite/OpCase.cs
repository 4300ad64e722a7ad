namespace Tessera.Backends.OpSuite;

/// <summary>
/// One op test: <see cref="Run"/> computes the case's output on a backend from fixed inputs; <see cref="Naive"/>
/// computes it from the op's definition in double precision (with the roundings the definition includes, such as
/// the F16 KV cache), as the reference for the CPU backend itself. Other backends are compared with the CPU backend.
/// </summary>
/// <param name="Op">The op (IBackend method), e.g. <c>matmul</c>.</param>
/// <param name="Name">The case, e.g. <c>matmul q4_k 3x256x512</c>.</param>
/// <param name="Tolerance">Largest accepted normalized error ‖out − ref‖ / ‖ref‖.</param>
/// <param name="Run">The output on a backend.</param>
/// <param name="Naive">The output from the definition.</param>
public sealed record OpCase(string Op, string Name, double Tolerance, Func<IBackend, float[]> Run, Func<float[]> Naive);

/// <summary>The outcome of one case on one backend.</summary>
/// <param name="Case">The case.</param>
/// <param name="Reference">What it was compared with: <c>cpu</c> or <c>naive</c>.</param>
/// <param name="Error">Normalized error (NaN when the output had a NaN or infinity).</param>
/// <param name="Passed">Whether the error is within the tolerance.</param>
/// <param name="Detail">Why it failed, empty when it passed.</param>
/// <param name="Milliseconds">Wall time of the backend's run (host-side, includes synchronization).</param>
public sealed record OpResult(OpCase Case, string Reference, double Error, bool Passed, string Detail, double Milliseconds);
