"""Small valid definitions shared by tests."""

MINI_SCHEME = """\
kind: scheme
id: mini
name: {zh: 小街道, en: Mini street}
unit_kinds:
  - {id: street, name: 街道}
  - {id: community, name: 社区}
units:
  - id: root
    kind: street
    name: 小街道办事处
    children:
      - {id: c1, kind: community, name: 一社区}
area_kinds:
  - {id: road, name: 道路}
areas:
  - {id: r1, kind: road, name: 一路, unit: c1}
roles:
  - {id: admin, name: 管理员, scope: district, capabilities: [scheme.manage, org.view]}
tiers:
  - {id: chief, name: 总路长, role: admin}
  - {id: first, name: 一级路长, reports_to: chief}
forms: [log]
patrol_form: log
patrol_rules:
  - id: weekly
    name: 每周巡查
    who: {tiers: [first]}
    at_least: 1
    per: week
"""
