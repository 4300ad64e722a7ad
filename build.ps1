# One entry point for Tessera on Windows (PowerShell). Same modes as build.sh: build (default), test, kernels.
param([string]$Mode = "build")
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$config = if ($env:CONFIGURATION) { $env:CONFIGURATION } else { "Release" }

function Build-Kernels {
    # Windows: nvcc comes from NVIDIA's CUDA installer (no automatic install here, unlike build.sh on Debian).
    if ((Get-Command nvcc -ErrorAction SilentlyContinue) -and (Get-Command cmake -ErrorAction SilentlyContinue)) {
        cmake -S . -B artifacts/kernels -DCMAKE_BUILD_TYPE=Release | Out-Null
        cmake --build artifacts/kernels
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
        # ptxas' per-kernel report (registers, shared memory, spills) for sm_80 and sm_90
        cmake --build artifacts/kernels --target ptxas | Select-String -Pattern "==|Compiling|registers|spill"
    } else {
        Write-Host "build.ps1: no nvcc found: CUDA kernels not built (the CPU backend works without them)"
        Remove-Item -Recurse -Force artifacts/kernels/ptx -ErrorAction SilentlyContinue
    }
}

switch ($Mode) {
    "build" {
        Build-Kernels
        dotnet publish cli/Tessera.Cli.csproj -c $config -o artifacts/bin --nologo -v quiet
        Write-Host "built: artifacts/bin/tessera.exe"
    }
    "test" {
        Build-Kernels
        dotnet build Engine.sln -c $config --nologo -v quiet
        dotnet test Engine.sln -c $config --no-build --nologo -v quiet
    }
    "kernels" { Build-Kernels }
    default { Write-Error "usage: ./build.ps1 [build|test|kernels]"; exit 2 }
}
