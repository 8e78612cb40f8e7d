// Anchor translation unit of the kprior_pch target, which owns the precompiled header.
