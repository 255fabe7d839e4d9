"""The explorer's view as a value: parsed from (and written back to) URL query parameters, checked against
the network's limits, and turned into the run_generator.py command line that renders the same image.

Parameters: seed, psi, noise (const|random|none), mix (a second seed) with styles (coarse,middle,fine),
e.<direction>=<std> (one per edit direction, e.g. e.age=1.5 or e.sefa:0=-2), b (an interpolation target
seed) with t (frame 0..FRAMES of the walk from seed to b), photo (the token of an uploaded, projected photo:
its latent replaces the seed's).
"""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field

SEED_MAX = 2 ** 32 - 1
PSI_RANGE = (0.0, 2.0)              # as run_generator.py --trunc
STRENGTH_MAX = 10.0                 # edit strengths, standard deviations of w
FRAMES = 60                         # interpolation frames per pair (run_generator.py --frames default)
NOISE_MODES = ("const", "random", "none")
GROUPS = ("coarse", "middle", "fine")
MAX_PARAMS = 64
PHOTO_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")   # secrets.token_urlsafe(16)


class BadRequest(ValueError):
    """A request the server refuses with HTTP `status` (400 unless given); the message is shown to the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class State:
    """One view: the face, its truncation and noise, style mixing, edits and interpolation."""

    seed: int = 0
    psi: float = 1.0
    noise: str = "const"
    mix: int | None = None
    styles: tuple[str, ...] = ()
    edits: tuple[tuple[str, float], ...] = ()          # (direction name, strength in std), sorted, non-zero
    b: int | None = None
    t: int = 0
    photo: str | None = None                            # an uploaded photo's token (explorer.photos)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def mixing(self) -> bool:
        return self.mix is not None and bool(self.styles)

    def query(self) -> dict[str, str]:
        """The canonical URL parameters of this view (defaults left out)."""
        q = {"seed": str(self.seed)}
        if self.photo is not None:
            q["photo"] = self.photo
        if self.psi != 1.0:
            q["psi"] = repr(self.psi)
        if self.noise != "const":
            q["noise"] = self.noise
        if self.mix is not None:
            q["mix"] = str(self.mix)
            if self.styles:
                q["styles"] = ",".join(self.styles)
        for name, v in self.edits:
            q[f"e.{name}"] = repr(v)
        if self.b is not None:
            q["b"], q["t"] = str(self.b), str(self.t)
        return q


def _int(params: dict[str, str], key: str, lo: int, hi: int, default: int | None) -> int | None:
    text = params.get(key)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise BadRequest(f"{key} must be a whole number {lo}..{hi}, not {text[:20]!r}")
    v = int(text)
    if not lo <= v <= hi:
        raise BadRequest(f"{key} {v} is out of range {lo}..{hi}")
    return v


def _float(text: str, key: str, lo: float, hi: float) -> float:
    try:
        v = float(text)
    except ValueError:
        raise BadRequest(f"{key} must be a number, not {text[:20]!r}") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise BadRequest(f"{key} {text[:20]} is outside {lo:g}..{hi:g}")
    return v


def parse_state(params: dict[str, str], directions: set[str] | frozenset[str], groups: tuple[str, ...] = GROUPS,
                allowed_extra: tuple[str, ...] = ()) -> State:
    """Check query parameters (one value each) against the limits and the offered directions and style groups;
    BadRequest names the first problem. Unknown parameters are refused (a typo should not pass silently)."""
    if len(params) > MAX_PARAMS:
        raise BadRequest(f"too many parameters ({len(params)} > {MAX_PARAMS})")
    known = {"seed", "psi", "noise", "mix", "styles", "b", "t", "photo", *allowed_extra}
    for key in params:
        if key not in known and not key.startswith("e."):
            raise BadRequest(f"unknown parameter {key[:40]!r}")
    seed = _int(params, "seed", 0, SEED_MAX, 0)
    psi = _float(params["psi"], "psi", *PSI_RANGE) if params.get("psi") else 1.0
    noise = params.get("noise") or "const"
    if noise not in NOISE_MODES:
        raise BadRequest(f"noise must be one of {', '.join(NOISE_MODES)}, not {noise[:20]!r}")
    mix = _int(params, "mix", 0, SEED_MAX, None)
    styles = tuple(s for s in filter(None, (params.get("styles") or "").split(",")))
    for s in styles:
        if s not in groups:
            raise BadRequest(f"styles: {s[:20]!r} is not one of this network's groups ({', '.join(groups)})")
    styles = tuple(g for g in groups if g in styles)          # canonical order, no repeats
    edits = []
    for key, text in params.items():
        if key.startswith("e."):
            name = key[2:]
            if name not in directions:
                offered = ", ".join(sorted(directions)) or "none"
                raise BadRequest(f"unknown direction {name[:40]!r} (offered: {offered})")
            v = round(_float(text, key, -STRENGTH_MAX, STRENGTH_MAX), 2)
            if v != 0:
                edits.append((name, v + 0.0))
    b = _int(params, "b", 0, SEED_MAX, None)
    t = _int(params, "t", 0, FRAMES, 0)
    photo = params.get("photo") or None
    if photo is not None and not PHOTO_TOKEN.match(photo):
        raise BadRequest("photo must be the token the upload returned")
    return State(seed=seed, psi=psi, noise=noise, mix=mix, styles=styles, edits=tuple(sorted(edits)), b=b,
                 t=t if b is not None else 0, photo=photo)


@dataclass(frozen=True)
class Command:
    """The run_generator.py command line for a view, which file holds the image, and whether it is exact."""

    command: str
    output: str                  # the file (and where in it) the image is
    exact: bool                  # pixel-identical to the explorer's image
    note: str = ""


def command_for(state: State, network: str, directions_folder: str, style_layers: dict[str, list[int]],
                computed: frozenset[str] = frozenset(), class_idx: int | None = None,
                outdir: str = "out") -> Command:
    """The command that reproduces `state`. run_generator.py renders one feature at a time (seeds, one edit,
    a style mix or an interpolation), so a view combining them gets the command for its main feature and a
    note saying what it leaves out. `computed`: directions the explorer computed (SeFa) rather than read; the
    command then starts by saving them with --mode directions."""
    base = ["python", "run_generator.py", "--network", network]
    folder = ["--directions", directions_folder] if directions_folder != "directions" else []
    common = []
    if state.psi != 1.0:
        common += ["--trunc", repr(state.psi)]
    if state.noise != "const":
        common += ["--noise-mode", state.noise]
    if class_idx is not None:
        common += ["--class", str(class_idx)]
    if outdir != "out":
        common += ["--outdir", outdir]
    left_out = []
    prefix = ""
    if state.photo is not None:
        c = _photo_command(state, base + folder + ["--projected-w", PROJECTED_FILE], common, outdir)
        direction = state.edits[0][0].partition(":")[0] if state.edits else None
        if direction in computed:
            c = Command(shlex.join(base + folder + ["--mode", "directions", "--method", direction]) + " && "
                        + c.command, c.output, c.exact, c.note)
        return c
    if state.b is not None:
        cmd = base + ["--mode", "interpolate", "--seeds", f"{state.seed},{state.b}", "--frames", str(FRAMES)] + common
        output = f"{outdir}/interpolate.mp4, frame {state.t} (of {FRAMES + 1})"
        exact = False
        left_out.append("the video is compressed, so its pixels differ slightly")
        if state.mixing:
            left_out.append("style mixing")
        if state.edits:
            left_out.append("edits")
    elif state.mixing:
        layers = sorted(i for g in state.styles for i in style_layers[g])
        styles = state.styles[0] if len(state.styles) == 1 else ",".join(map(str, layers))
        cmd = base + ["--mode", "style-mix", "--rows", str(state.seed), "--cols", str(state.mix), "--styles",
                      styles] + common
        output = f"{outdir}/mix-{state.seed}-{state.mix}.png"
        exact = not state.edits
        if state.edits:
            left_out.append("edits")
    elif state.edits:
        args, output, others = _one_edit(state, outdir, state.seed)
        cmd = base + folder + ["--seeds", str(state.seed)] + args + common
        exact = not others
        left_out += others
        direction = state.edits[0][0].partition(":")[0]
        if direction in computed:
            prefix = shlex.join(base + folder + ["--mode", "directions", "--method", direction]) + " && "
    else:
        cmd = base + ["--seeds", str(state.seed)] + common
        output = f"{outdir}/seed{state.seed:04d}.png"
        exact = True
    if state.noise == "random":
        exact = False
        left_out.append("random noise differs on every run")
    note = ("not reproduced: " + "; ".join(left_out)) if left_out else ""
    return Command(prefix + shlex.join(cmd), output, exact, note)


PROJECTED_FILE = "projected_w.npz"       # the name the page downloads an uploaded photo's latent under


def _one_edit(state: State, outdir: str, number: int) -> tuple[list[str], str, list[str]]:
    """The --edit flags of a view's first edit (strength v..v in 2 steps), the file and place that holds its
    image, and what the command leaves out (run_generator.py applies one direction at a time)."""
    name, v = state.edits[0]
    direction, _, comp = name.partition(":")
    label = direction if not comp else f"{direction}{int(comp):02d}"
    others = ["the other edits (run_generator.py applies one direction at a time)"] if len(state.edits) > 1 else []
    output = f"{outdir}/edit-{label}-seed{number:04d}.png, left half"
    return ["--edit", f"{name}={v!r}..{v!r}", "--steps", "2"], output, others


def _photo_command(state: State, base: list[str], common: list[str], outdir: str) -> Command:
    """The command for a view of an uploaded photo: its downloaded projected_w.npz with at most one edit.
    Truncation does not apply to a projected latent (as in run_generator.py)."""
    common = [c for i, c in enumerate(common) if c != "--trunc" and (i == 0 or common[i - 1] != "--trunc")]
    left_out = []
    if state.b is not None:
        left_out.append("the walk to another seed")
    if state.mixing:
        left_out.append("style mixing")
    if state.edits:
        args, output, others = _one_edit(state, outdir, 0)               # strips are numbered by projected latent
        cmd = base + args + common
        left_out += others
    else:
        cmd = base + common
        output = f"{outdir}/projected00.png"
    if state.noise == "random":
        left_out.append("random noise differs on every run")
    note = ("not reproduced: " + "; ".join(left_out)) if left_out else ""
    note = (note + "; " if note else "") + f"download {PROJECTED_FILE} from the photo panel first"
    return Command(shlex.join(cmd), output, not left_out, note)
