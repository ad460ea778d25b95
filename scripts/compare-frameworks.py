"""The Curves autoencoder in JAX and PyTorch on whatever device they find (the GPU on a GPU
machine, else the CPU), timed like `natgrad bench fvp` times natgrad:

* product: the Gauss-Newton (= Fisher: sigmoid outputs with cross-entropy) vector product
  the way a CG loop calls it: linearize once per metric batch, then one tangent pass and
  one transposed pass per product;
* loss: the forward pass and loss (JAX: `jit(loss)`);
* loss+gradient (JAX: `jit(value_and_grad(loss))`; PyTorch: eager forward and backward).

    python3 scripts/compare-frameworks.py --batch 1000,5000 --runs 10 [--only jax|torch] [--precision highest|tf32]

(`natgrad bench fvp --compare-jax` runs this script's JAX half, "highest" only, after its
own measurements and prints natgrad / JAX ratios.)

Prints one line per framework, precision, batch and what: the median ms. "highest" is exact
f32 (natgrad's default); "tf32" lets GPU matrix units round operands to TF32 (no effect on
a CPU).
"""
import argparse
import time

SIZES = [784, 400, 200, 100, 50, 25, 6, 25, 50, 100, 200, 400, 784]
CODE_LAYER = 5  # the 6-unit layer is linear


def median_ms(call, sync, runs):
    call()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[len(times) // 2]


def jax_products(batches, runs, precisions):
    import jax
    import jax.numpy as jnp

    def forward(params, x):
        h = x
        for i, (w, b) in enumerate(params):
            r = h @ w + b
            if i == len(params) - 1:
                return r
            h = r if i == CODE_LAYER else jax.nn.sigmoid(r)

    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        key, k1, k2 = jax.random.split(key, 3)
        params.append((0.1 * jax.random.normal(k1, (fan_in, fan_out)), 0.1 * jax.random.normal(k2, (fan_out,))))
    v = jax.tree_util.tree_map(lambda p: jnp.ones_like(p) * 0.01, params)

    @jax.jit
    def product(f_jvp, curvature, v):
        transpose = jax.linear_transpose(f_jvp, v)
        (g,) = transpose(f_jvp(v) * curvature)
        return g

    for precision, label in [("highest", "highest"), ("tensorfloat32", "tf32")]:
        if label not in precisions:
            continue
        with jax.default_matmul_precision(precision):
            for batch in batches:
                x = jax.random.uniform(key, (batch, 784))
                r, f_jvp = jax.linearize(lambda p: forward(p, x), params)
                y = jax.nn.sigmoid(r)
                curvature = y * (1 - y) / batch
                out = {}

                def call():
                    out["g"] = product(f_jvp, curvature, v)

                ms = median_ms(call, lambda: jax.block_until_ready(out["g"]), runs)
                print(f"jax {jax.__version__} {label:<8} batch {batch:>6} product       {ms:8.3f} ms", flush=True)

                def loss(p):
                    r = forward(p, x)
                    return jnp.mean(jnp.sum(jax.nn.softplus(r) - x * r, axis=1))

                for what, f in [("loss", jax.jit(loss)), ("loss+gradient", jax.jit(jax.value_and_grad(loss)))]:
                    def call_f(f=f):
                        out["g"] = f(params)

                    ms = median_ms(call_f, lambda: jax.block_until_ready(out["g"]), runs)
                    print(f"jax {jax.__version__} {label:<8} batch {batch:>6} {what:<13} {ms:8.3f} ms", flush=True)


def torch_products(batches, runs, precisions):
    import torch
    from torch.func import linearize, vjp

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device="cpu").manual_seed(0)
    params = []
    for fan_in, fan_out in zip(SIZES, SIZES[1:]):
        params.append(0.1 * torch.randn(fan_in, fan_out, generator=gen))
        params.append(0.1 * torch.randn(fan_out, generator=gen))
    params = tuple(p.to(device) for p in params)
    v = tuple(torch.full_like(p, 0.01) for p in params)

    def forward(x):
        def f(*ps):
            h = x
            layers = len(ps) // 2
            for i in range(layers):
                r = h @ ps[2 * i] + ps[2 * i + 1]
                if i == layers - 1:
                    return r
                h = r if i == CODE_LAYER else torch.sigmoid(r)

        return f

    for tf32, label in [(False, "highest"), (True, "tf32")]:
        if label not in precisions:
            continue
        torch.backends.cuda.matmul.allow_tf32 = tf32
        for batch in batches:
            x = torch.rand(batch, 784, generator=gen).to(device)
            f = forward(x)
            r, f_jvp = linearize(f, *params)
            _, f_vjp = vjp(f, *params)
            y = torch.sigmoid(r)
            curvature = y * (1 - y) / batch

            def call():
                f_vjp(f_jvp(*v) * curvature)

            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            ms = median_ms(call, sync, runs)
            print(f"torch {torch.__version__} {label:<8} batch {batch:>6} product       {ms:8.3f} ms", flush=True)
            leaves = tuple(p.detach().clone().requires_grad_(True) for p in params)

            def loss():
                r = f(*leaves)
                return (torch.nn.functional.softplus(r) - x * r).sum(dim=1).mean()

            def loss_only():
                with torch.no_grad():
                    loss()

            def loss_and_gradient():
                torch.autograd.grad(loss(), leaves)

            for what, call_f in [("loss", loss_only), ("loss+gradient", loss_and_gradient)]:
                ms = median_ms(call_f, sync, runs)
                print(f"torch {torch.__version__} {label:<8} batch {batch:>6} {what:<13} {ms:8.3f} ms", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1000,5000,20000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["jax", "torch"], default=None)
    parser.add_argument("--precision", choices=["highest", "tf32"], default=None)
    args = parser.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    precisions = [args.precision] if args.precision else ["highest", "tf32"]
    if args.only in (None, "jax"):
        jax_products(batches, args.runs, precisions)
    if args.only in (None, "torch"):
        torch_products(batches, args.runs, precisions)


if __name__ == "__main__":
    main()
