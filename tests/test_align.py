"""Landmark alignment of raw photos (alignment/faces.py, create.py --align): the same face rotated, scaled and
moved inside a larger photo aligns to the same crop, measured by image registration (OpenCV's ECC); no face, two
faces, a face cut by the border and a tiny face are handled and reported."""
from __future__ import annotations

import json
import sys
import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from common.images import BadImage
from alignment.faces import FFHQ, align, align_faces, detect_faces, load_framing, measure_framing, refine_face

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from photos import FACES, face, place  # noqa: E402


def registration(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(rotation in degrees, scale, shift of the centre in px) of the affine map ECC finds from crop a to crop
    b, over the central disc (the face; the corners hold background or padding, which differ by construction)."""
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b))
    n = a.shape[0]
    mask = np.zeros((n, n), np.uint8)
    cv2.circle(mask, (n // 2, n // 2), int(n * 0.31), 255, -1)
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 300, 1e-6)
    _, warp = cv2.findTransformECC(ga, gb, warp, cv2.MOTION_AFFINE, criteria, mask, 5)
    lin, centre = warp[:, :2], np.array([n / 2, n / 2], np.float32)
    moved = lin @ centre + warp[:, 2] - centre                           # where the crop's centre goes
    return (float(np.degrees(np.arctan2(lin[1, 0], lin[0, 0]))), float(np.sqrt(abs(np.linalg.det(lin)))),
            float(np.hypot(*moved)))


def aligned(photo: np.ndarray, size: int = 128) -> np.ndarray:
    (crop, _), = align_faces(photo, size)
    return crop


@pytest.mark.parametrize("index", [0, 3, 7])
def test_a_face_aligns_to_the_same_crop_however_it_is_placed(index):
    """Rotated by up to 25 degrees, scaled by 0.75-1.25 and moved inside a larger photo, a face aligns to the
    crop of the same face upright: within 2 degrees, 3 % scale and 2 px at 128x128 (the issue's bounds).
    benchmarks/bench_align.py on 10 faces x 3 placements: at most 1.00 degree, 1.7 % and 0.40 px, mean
    0.25 degrees, 0.6 %, 0.15 px; one detection alone gave up to 4.1 degrees and 10.4 %.
    Pixel differences would be too strict a measure: half a degree moves the mean by several levels."""
    photo = face(index)
    reference = aligned(place(photo))
    for angle, scale, at in [(25, 1.0, (260, 330)), (-20, 0.75, (350, 280)), (12, 1.25, (300, 300))]:
        crop = aligned(place(photo, angle, scale, at))
        rot, s, shift = registration(reference, crop)
        print(f"{index} {angle:+} deg x{scale}: {rot:+.2f} deg, scale {s:.3f}, shift {shift:.2f} px")
        assert abs(rot) < 2.0 and abs(s - 1) < 0.03 and shift < 2.0, (angle, scale, rot, s, shift)


def placement(photo: np.ndarray, angle: float, scale: float, at: tuple[int, int]) -> np.ndarray:
    """The 2x3 matrix `place` uses: source pixel -> placed pixel."""
    h, w = photo.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += [at[0] - w / 2, at[1] - h / 2]
    return m


def test_refined_landmarks_follow_the_face_through_rotation_and_scale():
    """The refined landmarks of a face rotated by 20 degrees and scaled 1.5x are the upright face's refined
    landmarks carried through the same rotation and scale (to 3 % of the eye distance): they belong to the
    face, not to how it was photographed. The first detection alone misses by far more on this face."""
    src = face(1)
    m_up, m_turned = placement(src, 0, 1.5, (350, 350)), placement(src, 20, 1.5, (350, 350))
    upright, turned = (place(src, a, 1.5, canvas=(700, 700), at=(350, 350)) for a in (0, 20))
    first_up, = detect_faces(upright)
    first_turned, = detect_faces(turned)
    to_src = np.linalg.inv(np.vstack([m_up, [0, 0, 1]]))[:2]

    def carried(points):                                   # upright photo -> source -> turned photo
        p = np.c_[points, np.ones(len(points))] @ to_src.T
        return np.c_[p, np.ones(len(p))] @ m_turned.T

    expected = carried(refine_face(upright, first_up).landmarks)
    got = refine_face(turned, first_turned).landmarks
    tolerance = 0.03 * first_up.eye_distance
    assert np.abs(got - expected).max() < tolerance, np.abs(got - expected).max() / first_up.eye_distance
    unrefined = np.abs(first_turned.landmarks - carried(first_up.landmarks)).max()
    assert unrefined > np.abs(got - expected).max(), unrefined


def test_no_face_two_faces_cut_face_and_tiny_face():
    rng = np.random.RandomState(0)
    with pytest.raises(BadImage, match="no face found"):
        align_faces(rng.randint(0, 256, (300, 400, 3), dtype=np.uint8), 64)
    two = place(face(2), at=(200, 300), canvas=(900, 600))
    two = np.where(two == 128, place(face(5), scale=0.8, at=(650, 300), canvas=(900, 600)), two)
    assert len(align_faces(two, 64, faces="all")) == 2
    (crop, f), = align_faces(two, 64, faces="largest")
    assert f.landmarks[:, 0].mean() < 450                  # the larger (left) face
    cut = place(face(4), at=(60, 300))                      # a third of the face outside the photo
    crop = aligned(cut, 64)                                 # FFHQ padding fills what the photo lacks
    assert crop.shape == (64, 64, 3) and crop.std() > 10
    tiny = place(face(6), scale=0.12, at=(300, 300))
    with pytest.raises(BadImage, match="no face found|too small"):
        align_faces(tiny, 64)


def test_create_align_records_landmarks_and_lists_what_it_skipped(tmp_path):
    """create.py --align --faces all on raw photos: one record per face (more faces than photos: none is
    dropped), alignment.json with every record's landmarks, skipped.txt with the reason for a photo without a
    face; the dataset verifies."""
    src = tmp_path / "raw"
    src.mkdir()
    Image.fromarray(place(face(0), 15, 1.6, canvas=(800, 600), at=(400, 300))).save(src / "one.jpg")
    two = place(face(2), at=(200, 300), canvas=(1400, 600))
    two = np.where(two == 128, place(face(5), scale=0.8, at=(650, 300), canvas=(1400, 600)), two)
    two = np.where(two == 128, place(face(3), scale=0.9, at=(1100, 300), canvas=(1400, 600)), two)
    Image.fromarray(two).save(src / "two.jpg")
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (300, 300, 3), dtype=np.uint8)).save(src / "none.png")
    r = run_cli("dataset_tool/create.py", str(src), str(tmp_path / "ds"), "--res", "64", "--align", "--faces", "all",
                "--jobs", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    ds = tmp_path / "ds"
    manifest = json.loads((ds / "dataset.json").read_text())
    assert manifest["count"] == 4 and manifest["preprocessing"]["crop"] == "FFHQ quad from landmarks"
    info = json.loads((ds / "alignment.json").read_text())
    assert info["framing"] == FFHQ.to_dict()
    assert sorted((f["file"], f["face"]) for f in info["faces"]) == [("one.jpg", 0), ("two.jpg", 0), ("two.jpg", 1),
                                                                          ("two.jpg", 2)]
    assert sorted(f["record"] for f in info["faces"]) == [0, 1, 2, 3]
    assert set(info["faces"][0]["landmarks"]) == {"eye_left", "eye_right", "nose", "mouth_left", "mouth_right"}
    assert "none.png\tno face found (--align)" in (ds / "skipped.txt").read_text()
    r = run_cli("dataset_tool/create.py", "--info", str(ds))
    assert r.returncode == 0, r.stderr[-2000:]
    # a crop is redone exactly from its recorded landmarks
    from alignment.faces import Face
    from datasets.reader import read_records
    rec = next(f for f in info["faces"] if f["file"] == "one.jpg")
    redone = align(np.asarray(Image.open(src / "one.jpg").convert("RGB")),
                   Face(tuple(rec["box"]), rec["confidence"], np.array(list(rec["landmarks"].values()))), 64)
    stored = [img for img, _ in read_records(ds, 64)][rec["record"]]
    assert np.abs(redone.astype(int) - stored.astype(int)).max() <= 1     # landmarks are stored to 0.01 px


def test_a_framing_measured_on_aligned_faces_reproduces_their_crops():
    """Measured on 20 UTKFace crops, the framing puts other UTKFace faces, rotated and moved inside a larger
    photo, where UTKFace's own crop has them: within 4 degrees, 6 % and 6 px at 128x128, which is how far
    UTKFace's own alignment varies from face to face (measured on 10 faces: at most 3.6 degrees, 4 %, 4.9 px).
    The shipped model's framing.json, measured on 100 of its training photos, is nearly the same."""
    framing, n = measure_framing((face(i) for i in range(40, 80)), name="utkface", limit=20)
    assert n == 20
    eye_l, eye_r, mouth_l, mouth_r = np.array(framing.points)
    assert 0.35 < eye_r[0] - eye_l[0] < 0.43 and 0.36 < mouth_l[1] - eye_l[1] < 0.44   # tighter than FFHQ's 0.25
    for i in (100, 120, 140):
        (crop, _), = align_faces(place(face(i), 15, 1.3, at=(300, 300)), 128, framing=framing)
        reference = np.asarray(Image.fromarray(face(i)).resize((128, 128), Image.LANCZOS))
        rot, s, shift = registration(reference, crop)
        print(f"{i}: {rot:+.2f} deg, scale {s:.3f}, shift {shift:.2f} px")
        assert abs(rot) < 4.0 and abs(s - 1) < 0.06 and shift < 6.0, (i, rot, s, shift)
    shipped = load_framing(ROOT / "models" / "utkface-64" / "framing.json")
    assert np.abs(np.array(shipped.points) - np.array(framing.points)).max() < 0.03


def test_project_aligns_a_raw_photo_to_the_networks_framing(tmp_path):
    """run_generator --mode project --target photo.jpg with the shipped model: the photo's face is aligned to the
    framing recorded with the model, said in one line, written to aligned.png, and projected."""
    photo = place(face(0), 18, 2.2, canvas=(1200, 900), at=(650, 420))
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=92)
    r = run_cli("run_generator.py", "--network", "utkface-64", "--mode", "project", "--target",
                str(tmp_path / "photo.jpg"), "--num-steps", "2", "--tune_steps", "2", "--outdir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "to the framing recorded with the network" in r.stdout and "aligned.png" in r.stdout, r.stdout
    assert "2 steps at " in r.stdout and " ms/step after the first" in r.stdout, r.stdout     # time per step
    aligned = np.asarray(Image.open(tmp_path / "out" / "aligned.png"))
    assert aligned.shape == (64, 64, 3)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "target.png")), aligned)
    r = run_cli("run_generator.py", "--network", "utkface-64", "--projected-w",
                str(tmp_path / "out" / "projected_w.npz"), "--edit", "age=-3..3",
                "--outdir", str(tmp_path / "out"))                               # then older and younger
    assert r.returncode == 0 and (tmp_path / "out" / "edit-age.png").is_file(), r.stderr[-2000:]
    reference = np.asarray(Image.fromarray(face(0)).resize((64, 64), Image.LANCZOS))
    rot, s, shift = registration(np.asarray(Image.fromarray(reference).resize((128, 128))),
                                 np.asarray(Image.fromarray(aligned).resize((128, 128))))
    assert abs(rot) < 4.0 and abs(s - 1) < 0.06 and shift < 6.0, (rot, s, shift)
    r = run_cli("run_generator.py", "--network", "utkface-64", "--mode", "project", "--target",
                str(tmp_path / "photo.jpg"), "--num-steps", "2", "--notune", "--framing", "ffhq", "--w-prior", "0.5",
                "--outdir", str(tmp_path / "o2"))
    assert r.returncode == 0 and "NVIDIA's FFHQ framing (--framing ffhq)" in r.stdout, r.stderr[-2000:]
    assert "distance pixel, prior 0.5; PSNR" in r.stdout, r.stdout                   # --w-prior as given
    ffhq = np.asarray(Image.open(tmp_path / "o2" / "aligned.png")).astype(float)
    assert np.abs(ffhq - aligned).mean() > 10                  # FFHQ frames the face looser: another crop
    (tmp_path / "aligned").mkdir()                         # --framing FOLDER: measured on its aligned faces
    for f in FACES[40:50]:
        (tmp_path / "aligned" / f.name).write_bytes(f.read_bytes())
    r = run_cli("run_generator.py", "--network", "utkface-64", "--mode", "project", "--target",
                str(tmp_path / "photo.jpg"), "--num-steps", "2", "--notune", "--framing", str(tmp_path / "aligned"),
                "--outdir", str(tmp_path / "o3"))
    assert r.returncode == 0 and "measured on 10 of its faces" in r.stdout, r.stdout + r.stderr[-2000:]
    measured = np.asarray(Image.open(tmp_path / "o3" / "aligned.png")).astype(float)
    assert np.abs(measured - aligned).mean() < np.abs(ffhq - aligned).mean()   # near the recorded framing
