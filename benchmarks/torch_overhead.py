"""Does archdsl's PyTorch lowering cost anything? ResNet-18 from a spec vs. written by hand.

    python benchmarks/torch_overhead.py [--size 64] [--batch 32] [--rounds 7] [--compile]

Both models are trained the same way for a few steps (forward + backward, SGD), in
one process, alternating model A and model B round by round so that drift in the
machine's speed (thermal, other load) hits both alike; the ratio reported is the
median over rounds of the two back-to-back measurements' ratio. `--compile` also times `torch.compile` of each.

The hand-written model follows torchvision's resnet.py (BasicBlock, in-place ReLU,
`out += identity`), without depending on torchvision.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import archdsl

RESNET18_SPEC = """
network resnet18
input 3x{size}x{size}
block basic(c, s=1) = [residual< conv3-c/s bn relu conv3-c bn > relu]
conv7-64/2 bn relu
maxpool3/2(pad=1)
basic(64) * 2
basic(128, 2) basic(128)
basic(256, 2) basic(256)
basic(512, 2) basic(512)
gap
FC-1000
"""


# ---- the hand-written reference, as torchvision writes it ----
class BasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


# ---- timing ----
def make_step(model, batch: int, size: int, device: str):
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def make_inference(model, size: int, device: str):
    """Forward only, batch 1, tiny input: the arithmetic is small, so Python overhead would show."""
    model.to(device).eval()
    x = torch.randn(1, 3, size, size, device=device)

    def step():
        with torch.no_grad():
            model(x)

    return step


def images_per_second(step, batch: int, iters: int, device: str) -> tuple[float, float]:
    """(by wall-clock time, by this process's CPU time).

    CPU time is what the step cost us, whatever else the machine runs: on a shared,
    loaded machine it is the steadier measure (with one thread, no spin-waiting either).
    """
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    sync()
    return batch * iters / (time.perf_counter() - wall), batch * iters / (time.process_time() - cpu)


def compare(steps: dict, batch: int, iters: int, rounds: int, warmup: int, device: str) -> dict[str, dict[str, list[float]]]:
    """images/s of each step by clock ("wall", "cpu"), round by round; who goes first alternates."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    results = {name: {"wall": [], "cpu": []} for name in steps}
    for r in range(rounds):
        for name in list(steps) if r % 2 == 0 else list(reversed(steps)):
            wall, cpu = images_per_second(steps[name], batch, iters, device)
            results[name]["wall"].append(wall)
            results[name]["cpu"].append(cpu)
    return results


def paired_ratio(results, a: str, b: str, clock: str) -> float:
    """Median over rounds of a/b measured back to back: robust to a machine whose speed drifts."""
    return statistics.median(x / y for x, y in zip(results[a][clock], results[b][clock]))


def report(results, baseline=None) -> None:
    for i, (name, clocks) in enumerate(results.items()):
        line = f"  {name:<22}"
        for clock, values in clocks.items():
            line += f"  {clock} {statistics.median(values):7.1f} images/s (min {min(values):.1f}, max {max(values):.1f})"
            if baseline is not None:
                base = list(baseline.values())[i][clock]
                line += f" {statistics.median(values) / statistics.median(base):.2f}x eager"
        print(line)


def ratios(results, a: str, b: str) -> str:
    return ", ".join(f"{clock} {paired_ratio(results, a, b, clock):.3f}" for clock in ("wall", "cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input height and width (default 64; the paper: 224)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=1, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--latency-iters", type=int, default=50, help="calls per round of the batch-1 forward")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's choice)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of both models")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    net = archdsl.load(RESNET18_SPEC.format(size=args.size))
    torch.manual_seed(0)
    generated = net.to_torch()
    torch.manual_seed(0)
    hand = ResNet18()
    assert sum(p.numel() for p in generated.parameters()) == sum(p.numel() for p in hand.parameters()) == net.params

    print(f"ResNet-18, batch {args.batch} at 3x{args.size}x{args.size}, {args.device}, {torch.get_num_threads()} threads,"
          f" torch {torch.__version__}; forward+backward+SGD, median of {args.rounds} rounds x {args.iters} steps")
    steps = {"hand-written": make_step(hand, args.batch, args.size, args.device),
             "archdsl to_torch": make_step(generated, args.batch, args.size, args.device)}
    eager = compare(steps, args.batch, args.iters, args.rounds, args.warmup, args.device)
    report(eager)
    print(f"  ratio archdsl / hand-written (median of paired rounds): {ratios(eager, 'archdsl to_torch', 'hand-written')}")

    print(f"dispatch-bound: forward only, batch 1 at 3x32x32, {args.latency_iters} calls per round")
    calls = {"hand-written": make_inference(hand, 32, args.device), "archdsl to_torch": make_inference(generated, 32, args.device)}
    latency = compare(calls, 1, args.latency_iters, args.rounds, args.warmup, args.device)
    report(latency)
    print(f"  ratio archdsl / hand-written (median of paired rounds): {ratios(latency, 'archdsl to_torch', 'hand-written')}")

    if args.compile:
        print("torch.compile (inductor), the training step again:")
        compiled = {
            "hand-written compiled": make_step(torch.compile(hand), args.batch, args.size, args.device),
            "archdsl compiled": make_step(torch.compile(generated), args.batch, args.size, args.device),
        }
        start = time.perf_counter()
        for step in compiled.values():
            step()  # compiles forward and backward
        print(f"  {time.perf_counter() - start:.0f} s to compile both")
        fast = compare(compiled, args.batch, args.iters, args.rounds, args.warmup, args.device)
        report(fast, baseline=eager)
        print(f"  ratio compiled archdsl / compiled hand-written: {ratios(fast, 'archdsl compiled', 'hand-written compiled')}")


if __name__ == "__main__":
    main()
