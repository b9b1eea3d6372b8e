#!/usr/bin/env python3
"""Generate the demo catalog (firmware_config/demo/catalog.json) and its product images.

Deterministic (fixed seed): running it again gives byte-identical files, so the committed
output can be checked against it. 210 products in 5 categories with typed specs (units and
"better" directions), simple SVG drawings, reviews, offers (one for the "gold" segment) and
the demo shopper profile. Usage: .venv/bin/python scripts/gen_demo_catalog.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "firmware_config" / "demo"
IMAGES = OUT_DIR / "images"
PER_CATEGORY = 42
SEED = 20261124
DEMO_SHOPPER_HASH = "49698d7f90c7344b7552e55142b73e35"  # hash of loyalty 2900001234566


def gs1_check(body: str) -> str:
    """GS1 mod-10 check digit of a 12-digit EAN body."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return str((10 - total % 10) % 10)


def ean_for(index: int) -> str:
    """EAN-13 of the demo product number ``index`` (1 -> 3760000000017)."""
    body = f"376000000{index:03d}"
    return body + gs1_check(body)


def spec(
    key: str,
    fr: str,
    en: str,
    value: Any,
    unit: str = "",
    better: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "label": fr, "labels": {"fr": fr, "en": en}, "value": value}
    if unit:
        out["unit"] = unit
    if better:
        out["better"] = better
    return out


PALETTE = ["#1f4e79", "#7a1f3d", "#2e6b30", "#5b3f8c", "#8c5a12", "#235f6b", "#444444"]


def svg(kind: str, color: str, label: str) -> str:
    """A small product drawing: enough to tell a TV from a phone on a card."""
    shapes = {
        "tv": (
            f'<rect x="20" y="30" width="200" height="120" rx="6" fill="{color}"/>'
            '<rect x="28" y="38" width="184" height="104" fill="#dfe8f2"/>'
            f'<rect x="105" y="150" width="30" height="14" fill="{color}"/>'
            f'<rect x="75" y="164" width="90" height="8" rx="3" fill="{color}"/>'
        ),
        "headphones": (
            f'<path d="M60 120 V95 a60 60 0 0 1 120 0 V120" fill="none" stroke="{color}" '
            'stroke-width="12"/>'
            f'<rect x="40" y="110" width="36" height="60" rx="14" fill="{color}"/>'
            f'<rect x="164" y="110" width="36" height="60" rx="14" fill="{color}"/>'
        ),
        "laptops": (
            f'<rect x="50" y="40" width="140" height="95" rx="6" fill="{color}"/>'
            '<rect x="57" y="47" width="126" height="81" fill="#dfe8f2"/>'
            f'<path d="M30 140 H210 L196 160 H44 Z" fill="{color}"/>'
        ),
        "smartphones": (
            f'<rect x="85" y="25" width="70" height="140" rx="12" fill="{color}"/>'
            '<rect x="91" y="37" width="58" height="112" rx="3" fill="#dfe8f2"/>'
            '<circle cx="120" cy="157" r="4" fill="#dfe8f2"/>'
        ),
        "vacuums": (
            f'<rect x="112" y="20" width="14" height="120" rx="5" fill="{color}"/>'
            f'<rect x="95" y="60" width="48" height="40" rx="10" fill="{color}"/>'
            f'<rect x="70" y="140" width="100" height="22" rx="8" fill="{color}"/>'
        ),
    }
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 200" width="240" height="200">'
        f'<rect width="240" height="200" fill="#f4f6f8"/>{shapes[kind]}'
        f'<text x="232" y="194" font-family="sans-serif" font-size="11" text-anchor="end" '
        f'fill="#555">{label}</text></svg>\n'
    )


def tv(rng: random.Random, i: int) -> tuple[str, str, float, list[dict[str, Any]], str]:
    diag = rng.choice([32, 43, 50, 55, 65, 75, 85])
    panel = rng.choice(["OLED", "QLED", "LED", "Mini-LED"])
    res = (
        "Full HD"
        if diag <= 32
        else rng.choice(["4K UHD", "4K UHD", "8K"] if diag >= 65 else ["4K UHD"])
    )
    brand = rng.choice(["Lumina", "Vistara", "Orbis", "Novex", "Kaelis"])
    base = {"OLED": 900, "QLED": 600, "LED": 250, "Mini-LED": 750}[panel]
    price = round(base + diag * rng.uniform(8, 22) + (900 if res == "8K" else 0), -1) - 0.01
    specs = [
        spec("diagonal", "Diagonale", "Screen size", diag, "in"),
        spec("resolution", "Définition", "Resolution", res),
        spec("panel", "Dalle", "Panel", panel),
        spec(
            "refresh",
            "Fréquence",
            "Refresh rate",
            rng.choice([50, 60, 100, 120, 144]),
            "Hz",
            "higher",
        ),
        spec("hdr", "HDR", "HDR", panel != "LED" or rng.random() < 0.5, better="higher"),
        spec("hdmi", "Ports HDMI", "HDMI ports", rng.choice([2, 3, 4]), "", "higher"),
        spec("power", "Consommation", "Power use", rng.randint(45, 180), "W", "lower"),
        spec("weight", "Poids", "Weight", round(diag * rng.uniform(0.22, 0.35), 1), "kg", "lower"),
        spec("energy", "Classe énergie", "Energy class", rng.choice(["E", "F", "G"])),
    ]
    name = f'Téléviseur {panel} {diag}" {brand} {res}'
    desc = (
        f"Téléviseur {panel} de {diag} pouces ({round(diag * 2.54)} cm), définition {res}, "
        f"Smart TV avec assistant vocal. {brand} : image lumineuse et contrastée."
    )
    return name, brand, price, specs, desc


def headphones(rng: random.Random, i: int) -> tuple[str, str, float, list[dict[str, Any]], str]:
    brand = rng.choice(["Sonor", "Auralis", "Kaelis", "Bassline", "Novex"])
    style = rng.choice(["circum-auriculaire", "supra-auriculaire", "intra-auriculaire"])
    anc = rng.random() < 0.6
    price = round(rng.uniform(29, 120) + (150 if anc else 0), 0) - 0.01
    weight = rng.randint(5, 12) if style == "intra-auriculaire" else rng.randint(180, 320)
    specs = [
        spec(
            "battery",
            "Autonomie",
            "Battery life",
            rng.choice([6, 8, 20, 24, 30, 40, 60]),
            "h",
            "higher",
        ),
        spec("anc", "Réduction de bruit active", "Active noise cancelling", anc, better="higher"),
        spec("weight", "Poids", "Weight", weight, "g", "lower"),
        spec("driver", "Haut-parleur", "Driver", rng.choice([6, 10, 30, 40, 50]), "mm"),
        spec(
            "charge",
            "Temps de charge",
            "Charge time",
            rng.choice([60, 90, 120, 150]),
            "min",
            "lower",
        ),
        spec("bluetooth", "Bluetooth", "Bluetooth", rng.choice(["5.0", "5.2", "5.3", "5.4"])),
        spec("style", "Type", "Type", style),
    ]
    model = rng.choice(["Air", "Pro", "Studio", "Go", "Max"])
    name = f"Casque {brand} {style} {'ANC ' if anc else ''}{model} {i}"
    desc = f"Casque sans fil {style} {brand}{', réduction de bruit active' if anc else ''}."
    return name, brand, price, specs, desc


def laptops(rng: random.Random, i: int) -> tuple[str, str, float, list[dict[str, Any]], str]:
    brand = rng.choice(["Orbis", "Kaelis", "Novex", "Vistara", "Zephyr"])
    screen = rng.choice([13.3, 14, 15.6, 16, 17.3])
    ram = rng.choice([8, 16, 16, 32, 64])
    storage = rng.choice([256, 512, 512, 1000, 2000])
    price = round(350 + ram * 18 + storage * 0.35 + rng.uniform(0, 500), 0) - 0.01
    storage_value, storage_unit = (storage // 1000, "TB") if storage >= 1000 else (storage, "GB")
    specs = [
        spec("screen", "Écran", "Screen", screen, "in"),
        spec(
            "cpu",
            "Processeur",
            "Processor",
            rng.choice(["8 cœurs 3,2 GHz", "10 cœurs 4,1 GHz", "12 cœurs 4,8 GHz"]),
        ),
        spec("ram", "Mémoire vive", "Memory", ram, "GB", "higher"),
        spec("storage", "Stockage SSD", "SSD storage", storage_value, storage_unit, "higher"),
        spec(
            "battery",
            "Autonomie",
            "Battery life",
            rng.choice([6, 8, 10, 12, 15, 18]),
            "h",
            "higher",
        ),
        spec("weight", "Poids", "Weight", round(rng.uniform(1.0, 2.8), 2), "kg", "lower"),
        spec("usb_c", "Ports USB-C", "USB-C ports", rng.choice([1, 2, 3, 4]), "", "higher"),
    ]
    name = f'Ordinateur portable {brand} {screen}" {ram} Go'
    desc = f"Ordinateur portable {brand} écran {screen} pouces, {ram} Go de mémoire, SSD."
    return name, brand, price, specs, desc


def smartphones(rng: random.Random, i: int) -> tuple[str, str, float, list[dict[str, Any]], str]:
    brand = rng.choice(["Novex", "Orbis", "Auralis", "Kaelis", "Pixelio"])
    storage = rng.choice([64, 128, 256, 512])
    price = round(150 + storage * 0.9 + rng.uniform(0, 700), 0) - 0.01
    specs = [
        spec("screen", "Écran", "Screen", rng.choice([6.1, 6.4, 6.7, 6.8]), "in"),
        spec("storage", "Stockage", "Storage", storage, "GB", "higher"),
        spec(
            "battery",
            "Batterie",
            "Battery",
            rng.choice([3200, 4000, 4500, 5000, 5500]),
            "mAh",
            "higher",
        ),
        spec(
            "camera",
            "Appareil photo",
            "Camera",
            rng.choice([12, 48, 50, 64, 108, 200]),
            "MP",
            "higher",
        ),
        spec("weight", "Poids", "Weight", rng.randint(160, 240), "g", "lower"),
        spec("5g", "5G", "5G", rng.random() < 0.8, better="higher"),
        spec("das", "DAS tête", "SAR (head)", round(rng.uniform(0.3, 1.2), 2), "W/kg", "lower"),
    ]
    name = f"Smartphone {brand} {rng.choice(['One', 'Neo', 'Ultra', 'Lite', 'S'])}{i} {storage} Go"
    desc = f"Smartphone {brand}, {storage} Go de stockage, double SIM."
    return name, brand, price, specs, desc


def vacuums(rng: random.Random, i: int) -> tuple[str, str, float, list[dict[str, Any]], str]:
    brand = rng.choice(["Zephyr", "Ventura", "Kaelis", "Novex", "Cyclona"])
    kind = rng.choice(["balai sans fil", "traîneau", "robot"])
    price = round(rng.uniform(89, 699), 0) - 0.01
    specs = [
        spec("kind", "Type", "Type", kind),
        spec(
            "runtime",
            "Autonomie",
            "Run time",
            rng.choice([30, 40, 45, 60, 90, 120]),
            "min",
            "higher",
        ),
        spec(
            "capacity",
            "Capacité du bac",
            "Bin capacity",
            rng.choice([0.4, 0.6, 0.75, 1.0, 2.0]),
            "l",
            "higher",
        ),
        spec("noise", "Niveau sonore", "Noise", rng.randint(62, 84), "dB", "lower"),
        spec("weight", "Poids", "Weight", round(rng.uniform(1.2, 6.5), 1), "kg", "lower"),
        spec(
            "power",
            "Puissance d'aspiration",
            "Suction power",
            rng.choice([120, 150, 185, 230, 250]),
            "AW",
            "higher",
        ),
        spec("hepa", "Filtre HEPA", "HEPA filter", rng.random() < 0.6, better="higher"),
    ]
    name = f"Aspirateur {kind} {brand} {rng.choice(['V', 'X', 'S'])}{rng.randint(5, 15)}"
    desc = f"Aspirateur {kind} {brand}, léger et silencieux, idéal pour les sols durs et tapis."
    return name, brand, price, specs, desc


CATEGORIES = [
    ("tv", "TV", tv),
    ("headphones", "HP", headphones),
    ("laptops", "LP", laptops),
    ("smartphones", "PH", smartphones),
    ("vacuums", "VC", vacuums),
]

AUTHORS = [
    "Camille D.",
    "Léa M.",
    "Hugo R.",
    "Inès B.",
    "Lucas P.",
    "Chloé V.",
    "Tom K.",
    "Sarah L.",
    "Nathan G.",
    "Emma F.",
    "Jules T.",
    "Zoé A.",
]
REVIEW_TEXTS = {
    5: [
        ("Excellent", "Très satisfait, je recommande sans hésiter."),
        ("Parfait", "Conforme à la description, qualité au rendez-vous."),
        ("Great value", "Works perfectly, setup took five minutes."),
    ],
    4: [
        ("Très bien", "Bon produit, quelques petits défauts mais rien de grave."),
        ("Good", "Does the job well; the manual could be clearer."),
    ],
    3: [("Correct", "Fait le travail, sans plus."), ("Okay", "Average for the price.")],
    2: [("Décevant", "La qualité n'est pas à la hauteur du prix.")],
    1: [("À éviter", "Tombé en panne au bout de deux semaines.")],
}


def main() -> None:
    rng = random.Random(SEED)
    IMAGES.mkdir(parents=True, exist_ok=True)
    for old in IMAGES.glob("*.svg"):
        old.unlink()
    products: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    index = 0
    for slug, prefix, make in CATEGORIES:
        for n in range(1, PER_CATEGORY + 1):
            index += 1
            sku = f"{prefix}-{n:03d}"
            name, brand, price, specs, desc = make(rng, n)
            color = PALETTE[rng.randrange(len(PALETTE))]
            image = f"{sku}.svg"
            (IMAGES / image).write_text(svg(slug, color, brand), encoding="utf-8")
            products.append(
                {
                    "sku": sku,
                    "ean": ean_for(index),
                    "name": name,
                    "brand": brand,
                    "category": slug,
                    "price": price,
                    "currency": "EUR",
                    "image": f"images/{image}",
                    "description": desc,
                    "specs": specs,
                }
            )
            quality = rng.choice([3, 4, 4, 5])
            for r in range(rng.randint(0, 7)):
                rating = max(1, min(5, quality + rng.choice([-2, -1, 0, 0, 1])))
                title, text = rng.choice(REVIEW_TEXTS[rating])
                reviews.append(
                    {
                        "id": f"demo-{sku}-{r}",
                        "sku": sku,
                        "rating": rating,
                        "title": title,
                        "text": text,
                        "author": rng.choice(AUTHORS),
                        "date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
                        "store": "demo-store",
                        "status": "approved",
                        "source": "central",
                    }
                )
    tv_oled = [p["sku"] for p in products if p["category"] == "tv" and "OLED" in p["name"]]
    offers = [
        {
            "id": "gold-oled-15",
            "title": "Offre Gold : -15 % sur les téléviseurs OLED",
            "description": "Réservé aux membres Gold, sur présentation de la carte en caisse.",
            "skus": tv_oled,
            "segments": ["gold"],
            "valid_from": "2026-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "gold-delivery",
            "title": "Livraison et installation offertes (Gold)",
            "description": "Pour tout téléviseur ou ordinateur acheté aujourd'hui.",
            "skus": [],
            "segments": ["gold"],
            "valid_from": "2026-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "headphones-10",
            "title": "-10 % sur les casques audio",
            "description": "Pour tous, jusqu'à la fin du mois.",
            "skus": [p["sku"] for p in products if p["category"] == "headphones"],
            "segments": [],
            "valid_from": "2026-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "tv-001-bundle",
            "title": "Barre de son à 1 € avec ce téléviseur",
            "description": "",
            "skus": ["TV-001"],
            "segments": [],
            "valid_from": "2026-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "silver-vacuum",
            "title": "Offre Silver : sac de rechange offert",
            "skus": [p["sku"] for p in products if p["category"] == "vacuums"],
            "segments": ["silver"],
            "valid_from": "2026-01-01",
            "valid_to": "2027-12-31",
        },
        {
            "id": "summer-2025",
            "title": "Soldes d'été 2025",
            "skus": [],
            "segments": [],
            "valid_from": "2025-06-01",
            "valid_to": "2025-08-31",
        },
    ]
    shoppers = [
        {
            "id_hash": DEMO_SHOPPER_HASH,
            "first_name": "Camille",
            "segments": ["gold"],
            "locale": "fr",
        }
    ]
    catalog = {"products": products, "offers": offers, "reviews": reviews, "shoppers": shoppers}
    (OUT_DIR / "catalog.json").write_text(
        json.dumps(catalog, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"{len(products)} products, {len(reviews)} reviews, {len(offers)} offers")


if __name__ == "__main__":
    main()
