namespace Tessera.Interop;
internal static class Placeholder { }
