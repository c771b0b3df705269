"""Sphinx configuration of the book (``make book``): MyST-NB pages from executed notebooks and Markdown, the
sphinx-book-theme, math as MathML, and nothing that loads from the network when the site is viewed."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the mathml extension beside this file

project = "cfcam"
author = "cfcam contributors"
copyright = "cfcam contributors, MIT License"
html_title = "cfcam: CF-CAM, taught step by step"

extensions = ["myst_nb", "mathml"]
html_math_renderer = "mathml"  # not MathJax, which loads from a CDN
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", ".*"]

# notebooks: executed beforehand by book/execute.py (in parallel, cached), so Sphinx only renders them
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget manager from a CDN: the explorers are stills on the site
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 4  # GitHub-style anchors, so docs/x.md#a-heading links resolve

REPOSITORY = os.environ.get("CFCAM_BOOK_REPOSITORY", "https://github.com/cfcam/cfcam")
html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": "HEAD",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}  # figures are drawn on white; without it the theme logs an error
html_static_path = ["_static"]  # beside this file
html_css_files = ["cfcam-book.css"]
html_last_updated_fmt = None
html_copy_source = True  # the .ipynb download button serves the executed notebook
suppress_warnings = ["myst.header", "misc.highlighting_failure"]  # headings jump a level; a ```csv block
