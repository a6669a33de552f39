"""SynthScenes: procedural, annotated Pillow scenes bundled with deem-eval (no downloads needed).

32 object categories with fixed colours and distinct silhouettes, 7 scene types whose object weights give
COCO-like co-occurrence, COCO instance annotations, five rendering styles, and single-object images with
controlled nuisances. Everything is a pure function of (seed, index/key): same seed, same bytes.
"""

from .categories import CATEGORIES, CATEGORY_NAMES, Category, category_by_id, category_by_name
from .coco import INSTANCES_FILE, Instances, image_file_name, read_instances
from .draw import STYLES, draw_object
from .generate import IMAGES_DIR, generate
from .layout import Placement, ScenePlan, plan_scene
from .render import ObjectInstance, instances_for, render_plan, render_scene, render_single_object
from .scenes import SCENE_NAMES, SCENES, SceneObject, SceneType, Zone, scene_by_name

__all__ = [
    "CATEGORIES",
    "CATEGORY_NAMES",
    "IMAGES_DIR",
    "INSTANCES_FILE",
    "SCENES",
    "SCENE_NAMES",
    "STYLES",
    "Category",
    "Instances",
    "ObjectInstance",
    "Placement",
    "SceneObject",
    "ScenePlan",
    "SceneType",
    "Zone",
    "category_by_id",
    "category_by_name",
    "draw_object",
    "generate",
    "image_file_name",
    "instances_for",
    "plan_scene",
    "read_instances",
    "render_plan",
    "render_scene",
    "render_single_object",
    "scene_by_name",
]
