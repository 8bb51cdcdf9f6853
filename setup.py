"""totalseg_bids: BIDS datasets to segmentation training sets and back."""

import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(r'__version__ = "([^"]+)"', (here / "totalseg_bids" / "__init__.py").read_text()).group(1)

extras = {
    # torch first: scripts/install.sh installs the pinned torch/torchvision pair before these
    "nnunet": ["nnunetv2>=2.5", "torch>=2.1"],
    "totalseg": ["TotalSegmentator>=2.0"],
    "datalad": ["datalad>=0.19"],
    "dask": ["dask[distributed]>=2024.1", "dask-jobqueue>=0.8"],
    "bids": ["pybids>=0.16"],
    # ISA-L DEFLATE for .nii.gz (core.gzip_codec); zlib is the fallback
    "fast": ["isal>=1.6"],
    # scikit-image: contours of the RTSTRUCT that phantoms --layout goldatlas writes
    "bidsify": ["openpyxl>=3.0", "pydicom>=2.3", "dcm2niix>=1.0.20220720", "scikit-image>=0.19"],
    # --method ants-rigid|ants-affine|ants-syn of register (antspyx pins scipy<1.16)
    "ants": ["antspyx>=0.5"],
    "augment": ["albumentations>=2.0"],
    # what `python -m benchmarks` compares against beyond the above: zlib-ng's DEFLATE, the cohort plot
    "bench": ["zlib-ng>=0.4", "matplotlib>=3.5"],
    "test": ["pytest>=7", "hypothesis>=6", "pybids>=0.16", "nilearn>=0.10", "bids-validator-deno>=2",
             "psutil>=5"],
}
#: every stage module gets a console script ``totalseg-bids-<stage>`` (underscores as dashes)
STAGES = ["bidsify", "segment_ct", "register", "init_data_config", "convert_config_to_nnunet", "predict",
          "crop", "slices", "augment", "export", "stats", "qc", "model", "provenance", "train_nnunet", "phantoms", "demo"]

extras["all"] = sorted({req for name, reqs in extras.items() if name != "test" for req in reqs})

setup(
    name="totalseg_bids",
    version=version,
    description="Turn BIDS CT/MRI datasets into segmentation training sets and bring predictions back as BIDS derivatives",
    long_description=(here / "README.md").read_text(encoding="utf-8") if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    url="https://github.com/neuropoly/totalseg_bids",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["totalseg_bids", "totalseg_bids.*"]),
    package_data={"totalseg_bids": ["qc_assets/*", "resources/configs/*.json", "testing/data/*.npz"]},
    install_requires=[
        "numpy>=1.23",
        "scipy>=1.9",
        "nibabel>=5.0",
        "SimpleITK>=2.2",
        "connected-components-3d>=3.10",
        "tqdm>=4.60",
        "pillow>=9.0",
    ],
    extras_require=extras,
    entry_points={"console_scripts": [f"totalseg-bids-{m.replace('_', '-')}=totalseg_bids.{m}:main" for m in STAGES]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)
