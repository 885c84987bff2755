"""The real-photo front end, used at run time by `tools/inpaint` and by the dataset build.

One photo's path: `finders` / `mesh` find each face and its 68 landmarks, `finders.face_problem`
says whether it can be restored, `holes` estimates the mask's hole, `align` crops the face as
the training data was cropped, and `paste` puts the restored crop back inside the hole.

`make_finder` picks a `finders.FaceFinder` implementation; the heavy models (dlib, TFLite) load
only when a finder is made.
"""

from __future__ import annotations

from maskinpaint_jax.faces import finders

FINDERS = ("hog", "mesh")


def make_finder(name: str = "hog", **kwargs) -> finders.FaceFinder:
  """"hog": dlib HOG, the paper's detector (the dataset build); "mesh": MediaPipe BlazeFace +
  face mesh, which also finds masked faces (users' photos). kwargs go to the constructor."""
  if name == "hog":
    return finders.HogFaceFinder(**kwargs)
  if name == "mesh":
    from maskinpaint_jax.faces import mesh  # pylint: disable=g-import-not-at-top
    return mesh.MeshFaceFinder(**kwargs)
  raise ValueError(f"face finder must be one of {FINDERS}, got {name!r}")
