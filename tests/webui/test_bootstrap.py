"""What the WebUI's preparation would install and clone, read from launch files in the shapes
of the real ones (tests/world/launchfiles.py): the plan sdboot's requirements step carries out
before launch.py runs."""

from __future__ import annotations

from sdboot.webui.bootstrap import Clone, plan_bootstrap
from tests.world.launchfiles import FORGE_UTILS, POST_V13_UTILS, PRE_V13_LAUNCH
from tests.world.webui_repo import LAUNCH_UTILS

CLIP_ZIP = "https://github.com/openai/CLIP/archive/d50d76daa670286dd6cacf3bcd80b5e4823fc8e1.zip"
OPENCLIP_ZIP = ("https://github.com/mlfoundations/open_clip/archive/"
                "bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b.zip")
V1_10_REQS = "setuptools==69.5.1  # temp fix\nGitPython==3.1.32\nopen-clip-torch==2.20.0\ntorch\n"


def test_v1_10_shape_clip_from_its_archive_open_clip_left_to_the_requirements() -> None:
    boot = plan_bootstrap(POST_V13_UTILS, V1_10_REQS, {})
    assert boot.requirements_file == "requirements_versions.txt"
    # open-clip-torch is in the requirements: launch.py finds open_clip installed, and
    # its archive beside it would give the resolver two sources of one distribution
    assert boot.packages == (CLIP_ZIP,)


def test_without_open_clip_in_the_requirements_its_archive_is_installed_too() -> None:
    boot = plan_bootstrap(POST_V13_UTILS, "GitPython==3.1.32\n", {})
    assert boot.packages == (CLIP_ZIP, OPENCLIP_ZIP)


def test_the_environment_wins_over_the_launch_file_defaults() -> None:
    """The WebUI reads the same variables: the mirror's URLs and the user's REQS_FILE."""
    env = {"CLIP_PACKAGE": "https://proxy.example/https://github.com/openai/CLIP/a.zip",
           "REQS_FILE": "requirements_custom.txt", "STABLE_DIFFUSION_REPO": "  "}
    boot = plan_bootstrap(POST_V13_UTILS, V1_10_REQS, env)
    assert boot.packages == (env["CLIP_PACKAGE"],)
    assert boot.requirements_file == "requirements_custom.txt"
    sd = next(c for c in boot.clones if c.folder == "stable-diffusion-stability-ai")
    assert sd.url == "https://github.com/Stability-AI/stablediffusion.git"  # blank: default


def test_clones_at_their_pinned_commits() -> None:
    text = LAUNCH_UTILS.format(sd_commit="a" * 40, kd_commit="b" * 40, clip_commit="c" * 40)
    boot = plan_bootstrap(text, "sdb-webui-dep==1.0.0\n", {})
    assert boot.clones == (
        Clone("stable-diffusion-stability-ai",
              "https://github.com/Stability-AI/stablediffusion.git", "a" * 40),
        Clone("k-diffusion", "https://github.com/crowsonkb/k-diffusion.git", "b" * 40))
    assert boot.packages == (f"https://github.com/openai/CLIP/archive/{'c' * 40}.zip",)


def test_a_commit_that_is_no_hash_pins_nothing() -> None:
    text = LAUNCH_UTILS.format(sd_commit="a" * 40, kd_commit="b" * 40, clip_commit="c" * 40)
    boot = plan_bootstrap(text, "", {"K_DIFFUSION_COMMIT_HASH": "main; rm -rf /"})
    kd = next(c for c in boot.clones if c.folder == "k-diffusion")
    assert kd.commit is None


def test_pre_v1_3_launch_py_gfpgan_and_git_urls() -> None:
    boot = plan_bootstrap(PRE_V13_LAUNCH, "basicsr==1.4.2\n", {})
    assert boot.packages == (
        "git+https://github.com/openai/CLIP.git@d50d76daa670286dd6cacf3bcd80b5e4823fc8e1",
        "git+https://github.com/mlfoundations/open_clip.git@"
        "bb6e834e9c70d9c27d0dc3ecedeebeaeb1ffad6b",
        "git+https://github.com/TencentARC/GFPGAN.git@8d2447a2d918f8eba5a4a01463fd48e45126a379")
    with_gfpgan = plan_bootstrap(PRE_V13_LAUNCH, "gfpgan==1.3.8\n", {})
    assert not any("GFPGAN" in p for p in with_gfpgan.packages)


def test_forge_shape_reads_the_same_variables() -> None:
    boot = plan_bootstrap(FORGE_UTILS, V1_10_REQS, {})
    assert boot.packages == (CLIP_ZIP,)


def test_no_launch_variables_nothing_extra() -> None:
    boot = plan_bootstrap("print('hello')\n", None, {"CLIP_PACKAGE": "x"})
    # the variable alone is not enough: the launch file must install that package
    assert boot.packages == () and boot.clones == ()
    assert boot.requirements_file == "requirements_versions.txt"


def test_exact_pins_of_the_requirements_file() -> None:
    """What joins the constraints after the requirements step: exact pins only, the torch
    stack left to the profile, names canonical."""
    from sdboot.webui.bootstrap import exact_pins

    text = ("setuptools==69.5.1  # temp fix\nGitPython==3.1.32\nPillow==9.5.0\ntorch\n"
            "torch==2.1.2\nxformers==0.0.23.post1\nnumpy>=1.26\nfoo==1.*\nbar>=1,==1.5\n"
            "pkg @ https://x.example/p.zip\n-r other.txt\nmarked==1.0 ; python_version<'3.11'\n")
    assert exact_pins(text) == ("gitpython==3.1.32", "pillow==9.5.0", "setuptools==69.5.1")
    assert exact_pins(None) == ()
