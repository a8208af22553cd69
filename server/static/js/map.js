/* Maps (docs/maps.md). Every [data-map] element becomes a Leaflet map from the JSON it carries
   (server/web/maps.py: map_data): the tile layers (none: the places on a plain background), the datum the tiles
   are drawn in, where it opens, and what it shows:
     shapes      GeoJSON of places (a road's line, a grid's polygon), each with its `name`;
     point       {lat, lng, label}: one position (a case's);
     points_url  an address answering GeoJSON points ({title, url, tone} each): pins, clustered;
     heat        with points_url: a heat map of them instead of pins;
     pick        a location field's pin, which the person may drag (or tap the map to move);
     draw        an area's own shape, drawn and edited with Leaflet-Geoman into a GeoJSON input (the shapes
                 around it shown, and snapped to).
   Positions arrive and leave in WGS-84; gcoord moves them into the tiles' datum for display (GCJ-02 for
   高德 and Tencent tiles) and a moved pin back. Text goes in as text, never as HTML. */
(function () {
  "use strict";
  var DATUMS = {gcj02: "GCJ02"};

  function shifted(datum, lnglat, back) {  // [lng, lat]: WGS-84 into the tiles' datum, or `back` out of it
    if (!DATUMS[datum] || !window.gcoord) return lnglat;
    return back ? gcoord.transform(lnglat, gcoord[DATUMS[datum]], gcoord.WGS84)
      : gcoord.transform(lnglat, gcoord.WGS84, gcoord[DATUMS[datum]]);
  }

  function shiftedShapes(datum, shapes) {
    var copy = JSON.parse(JSON.stringify(shapes));
    return DATUMS[datum] && window.gcoord ? gcoord.transform(copy, gcoord.WGS84, gcoord[DATUMS[datum]]) : copy;
  }

  function toLatLng(datum, lat, lng) {
    var p = shifted(datum, [lng, lat]);
    return L.latLng(p[1], p[0]);
  }

  function text(words, href) {  // a tooltip's or popup's content: text, or a link whose words are text
    var el = document.createElement(href ? "a" : "span");
    el.textContent = words || "";
    if (href) el.href = href;
    return el;
  }

  function credit(words) {  // Leaflet shows a layer's attribution as HTML: give it escaped
    var el = document.createElement("span");
    el.textContent = words || "";
    return el.innerHTML;
  }

  function build(el) {
    var data = JSON.parse(el.dataset.map);
    el.dataset.mapReady = "1";
    var map = L.map(el, {maxZoom: 19, scrollWheelZoom: !!data.wheel});
    el.fanganMap = map;
    map.attributionControl.setPrefix(false);
    if (!data.tiles || !data.tiles.length) el.classList.add("map-plain");
    (data.tiles || []).forEach(function (layer) {
      L.tileLayer(layer.url, {subdomains: layer.subdomains || "abc", maxZoom: layer.max_zoom || 18,
        attribution: credit(layer.attribution)}).addTo(map);
    });
    var bounds = L.latLngBounds([]);
    if (data.shapes && data.shapes.features && data.shapes.features.length) {
      var shapes = L.geoJSON(shiftedShapes(data.datum, data.shapes), {
        className: data.draw ? "map-shape map-around" : "map-shape",
        style: function (feature) {  // a shape's `tone` (walked, a route…) colours it by the page's style sheet
          var tone = feature && feature.properties && feature.properties.tone;
          return tone ? {className: "map-shape map-tone-" + String(tone).replace(/[^a-z_]/g, "")} : {};
        },
        pmIgnore: true, snapIgnore: false,  // (a drawing map: seen and snapped to, never edited)
        pointToLayer: function (_feature, latlng) { return L.circleMarker(latlng, {radius: 6, className: "map-shape"}); },
        onEachFeature: function (feature, layer) {
          if (feature.properties && feature.properties.name) layer.bindTooltip(text(feature.properties.name));
        }
      }).addTo(map);
      bounds.extend(shapes.getBounds());
    }
    if (data.point) {
      var here = toLatLng(data.datum, data.point.lat, data.point.lng);
      L.marker(here, {title: data.point.label || "", keyboard: false}).addTo(map);
      bounds.extend(here);
    }
    if (data.pick) pick(el, map, data, bounds);
    if (data.draw) draw(el, map, data, bounds);
    if (data.points_url) points(el, map, data);
    if (bounds.isValid()) {
      map.fitBounds(bounds, {maxZoom: 17, padding: [24, 24]});
    } else if (data.center) {
      map.setView(toLatLng(data.datum, data.center[0], data.center[1]), data.zoom || 15);
    } else {
      map.setView([35, 105], 4);  // China, until something is shown
    }
  }

  function points(el, map, data) {
    fetch(data.points_url, {credentials: "same-origin", headers: {"Accept": "application/geo+json"}})
      .then(function (answer) { if (!answer.ok) throw new Error(answer.status); return answer.json(); })
      .then(function (found) {
        var features = (found && found.features) || [];
        el.dataset.points = String(features.length);
        var latlngs = features.map(function (f) {
          return toLatLng(data.datum, f.geometry.coordinates[1], f.geometry.coordinates[0]);
        });
        if (data.heat && L.heatLayer) {
          // Full strength from a district's zoom on (the plugin's default fades every point below the map's
          // highest zoom, and a district's view is several levels below it).
          L.heatLayer(latlngs.map(function (p) { return [p.lat, p.lng, 1]; }),
                      {radius: 25, blur: 18, maxZoom: 12, minOpacity: 0.35}).addTo(map);
        } else {
          var group = L.markerClusterGroup ? L.markerClusterGroup({showCoverageOnHover: false}) : L.layerGroup();
          features.forEach(function (f, i) {
            var p = f.properties || {};
            var marker = L.marker(latlngs[i], {title: p.title || "", icon: L.divIcon({
              className: "map-pin map-pin-" + String(p.tone || "plain").replace(/[^a-z_]/g, ""), iconSize: [26, 26]})});
            marker.bindPopup(text(p.title, p.url));
            group.addLayer(marker);
          });
          map.addLayer(group);
        }
        if (latlngs.length && !data.point && !(data.shapes && data.shapes.features && data.shapes.features.length)) {
          map.fitBounds(L.latLngBounds(latlngs), {maxZoom: 16, padding: [24, 24]});
        }
        el.dispatchEvent(new CustomEvent("fangan:points", {bubbles: true}));
      })
      .catch(function () { el.dataset.points = "failed"; });
  }

  // A location field: the phone's fix with its accuracy circle, a pin the person may drag (or tap the map to
  // move), and the road or grid there proposed in the field's list.
  function pick(el, map, data, bounds) {
    var box = document.getElementById(data.pick.box);
    if (!box) return;
    var lat = box.querySelector("[data-geo-lat]"), lng = box.querySelector("[data-geo-lng]");
    var accuracy = box.querySelector("[data-geo-accuracy]"), status = box.querySelector("[data-geo-status]");
    var marker = null, circle = null;

    function show(wgsLat, wgsLng, metres) {
      var at = toLatLng(data.datum, wgsLat, wgsLng);
      if (!marker) {
        marker = L.marker(at, {draggable: true, autoPan: true, title: data.pick.label}).addTo(map);
        marker.on("dragend", function () { moved(marker.getLatLng()); });
      } else {
        marker.setLatLng(at);
      }
      if (circle) { map.removeLayer(circle); circle = null; }
      if (metres) circle = L.circle(at, {radius: Number(metres), className: "map-accuracy"}).addTo(map);
      return at;
    }

    function moved(latlng) {  // by hand: the tiles' datum back to WGS-84; a position chosen has no accuracy
      var p = shifted(data.datum, [latlng.lng, latlng.lat], true);
      lat.value = p[1].toFixed(6);
      lng.value = p[0].toFixed(6);
      accuracy.value = "";
      show(p[1], p[0], null);
      status.textContent = data.pick.moved.replace("{lat}", lat.value).replace("{lng}", lng.value);
      propose();
    }

    var outline = null;
    function outlined(place) {  // the road or grid picked, drawn on the map
      if (outline) { map.removeLayer(outline); outline = null; }
      if (!place || !place.geometry) return null;
      outline = L.geoJSON(shiftedShapes(data.datum, place.geometry), {className: "map-shape"}).addTo(map);
      if (place.name) outline.bindTooltip(text(place.name));
      return outline;
    }

    function ask(query, then) {
      if (!data.pick.place_url) return;
      fetch(data.pick.place_url + "?" + query, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (answer) { return answer.ok ? answer.json() : {}; })
        .then(function (place) { if (place && place.key) then(place); })
        .catch(function () {});
    }

    function propose() {  // the road or grid at the pin (or nearest), picked in the field's list
      if (!lat.value || !lng.value) return;
      ask("lat=" + encodeURIComponent(lat.value) + "&lng=" + encodeURIComponent(lng.value), function (place) {
        var list = document.getElementById(data.pick.list);
        if (!list) return;
        var option = Array.prototype.find.call(list.options, function (o) { return o.value === place.key; });
        if (!option && list.parentNode.querySelector(".place-search")) {
          option = new Option(place.name, place.key);  // a searched list holds only what was found
          list.add(option);
        }
        if (option && list.value !== place.key) {
          list.value = place.key;
          list.dispatchEvent(new Event("change", {bubbles: true}));
        }
        outlined(place);
        el.dataset.proposed = place.key;
      });
    }

    // A place picked from the list (or given by a board's QR code) is shown; with no pin yet, the map goes there.
    function picked(list) {
      if (!list || !list.value) { outlined(null); return; }
      ask("key=" + encodeURIComponent(list.value), function (place) {
        var shape = outlined(place);
        if (shape && !marker) map.fitBounds(shape.getBounds(), {maxZoom: 17, padding: [24, 24]});
      });
    }
    document.addEventListener("change", function (event) {
      if (event.target.id === data.pick.list && event.isTrusted) picked(event.target);
    });
    picked(document.getElementById(data.pick.list));

    if (lat.value && lng.value) bounds.extend(show(Number(lat.value), Number(lng.value), accuracy.value));
    map.on("click", function (event) { moved(event.latlng); });
    box.addEventListener("fangan:located", function () {  // the phone's fix (static/js/fangan.js)
      var at = show(Number(lat.value), Number(lng.value), accuracy.value);
      map.setView(at, Math.max(map.getZoom(), 17));
      propose();
    });
  }

  // A map in a closed <details> is built when it is opened (a hidden map has no size), and the <details>
  // stays open or closed as the person left it when the page or its list is loaded again.
  // An area's own shape: drawn, moved, reshaped (snapping to the shapes around it) and removed with
  // Leaflet-Geoman's tools, for the kind's geometry (a road a line, a grid a polygon); every change is written
  // to the GeoJSON input, in WGS-84, which the server checks when the form is saved. Typing in the input
  // still works: the map follows it.
  var SHAPES = {point: ["Point"], line: ["LineString", "MultiLineString"], polygon: ["Polygon", "MultiPolygon"]};

  function draw(el, map, data, bounds) {
    var input = document.getElementById(data.draw.input);
    var kindInput = data.draw.kind_input ? document.getElementById(data.draw.kind_input) : null;
    if (!input || !map.pm) return;
    var drawn = L.featureGroup().addTo(map);

    function shape() { return (data.draw.kinds || {})[kindInput ? kindInput.value : data.draw.kind] || "any"; }

    function tools() {
      var k = shape();
      map.pm.removeControls();
      map.pm.addControls({position: "topleft", drawMarker: k === "point" || k === "any",
        drawPolyline: k === "line" || k === "any", drawPolygon: k === "polygon" || k === "any",
        drawRectangle: false, drawCircle: false, drawCircleMarker: false, drawText: false, cutPolygon: false,
        rotateMode: false, editMode: true, dragMode: true, removalMode: true});
    }

    function rounded(coords) {
      return typeof coords[0] === "number" ? [Math.round(coords[0] * 1e6) / 1e6, Math.round(coords[1] * 1e6) / 1e6]
        : coords.map(rounded);
    }

    function save() {  // the drawn layers as one geometry, back in WGS-84
      var parts = drawn.getLayers().map(function (layer) {
        var geometry = layer.toGeoJSON().geometry;
        if (DATUMS[data.datum] && window.gcoord) geometry = gcoord.transform(geometry, gcoord[DATUMS[data.datum]], gcoord.WGS84);
        return geometry;
      });
      var out = "";
      if (parts.length === 1) {
        out = parts[0];
      } else if (parts.length > 1) {
        var type = parts[parts.length - 1].type.replace("Multi", "");
        var same = parts.filter(function (p) { return p.type.replace("Multi", "") === type; });
        out = {type: "Multi" + type, coordinates: same.reduce(function (all, p) {
          return all.concat(p.type.indexOf("Multi") === 0 ? p.coordinates : [p.coordinates]);
        }, [])};
      }
      if (out) out = {type: out.type, coordinates: rounded(out.coordinates)};
      input.value = out ? JSON.stringify(out) : "";
      el.dataset.drawn = out ? out.type : "";
      input.dispatchEvent(new Event("input", {bubbles: true}));
    }

    function watch(layer) { layer.on("pm:edit pm:dragend pm:markerdragend", save); }

    function load() {  // what the input holds, drawn
      drawn.clearLayers();
      var geometry = null;
      try { geometry = input.value.trim() ? JSON.parse(input.value) : null; } catch (e) { geometry = null; }
      if (!geometry || !geometry.type || !geometry.coordinates) return null;
      L.geoJSON(shiftedShapes(data.datum, geometry), {className: "map-shape map-own"}).eachLayer(function (layer) {
        drawn.addLayer(layer);
        watch(layer);
      });
      el.dataset.drawn = geometry.type;
      return drawn.getLayers().length ? drawn.getBounds() : null;
    }

    map.pm.setLang(document.documentElement.lang.indexOf("zh") === 0 ? "zh" : "en");
    map.pm.setGlobalOptions({snappable: true, snapDistance: 15, allowSelfIntersection: false,
      pathOptions: {className: "map-shape map-own"}});
    tools();
    var own = load();
    if (own && own.isValid()) bounds.extend(own);
    map.on("pm:create", function (event) {
      if (SHAPES[shape()] === undefined && shape() !== "any") { map.removeLayer(event.layer); return; }
      drawn.addLayer(event.layer);
      watch(event.layer);
      save();
    });
    map.on("pm:remove", function (event) { drawn.removeLayer(event.layer); save(); });
    input.addEventListener("change", function () {
      var own = load();
      if (own && own.isValid()) map.fitBounds(own, {maxZoom: 17, padding: [24, 24]});
    });
    if (kindInput) kindInput.addEventListener("change", tools);
    // A line or polygon still being drawn is not in the box yet: saving then would lose it without a word.
    var form = input.form;
    if (form) form.addEventListener("submit", function (event) {
      if (map.pm.globalDrawModeEnabled()) {
        event.preventDefault();
        var note = el.parentNode.querySelector("[data-draw-unfinished]");
        if (note) { note.hidden = false; note.scrollIntoView({block: "center"}); }
      }
    });
    map.on("pm:drawend", function () {
      var note = el.parentNode.querySelector("[data-draw-unfinished]");
      if (note) note.hidden = true;
    });
  }

  function init(root) {
    if (!window.L) return;
    root.querySelectorAll("details[data-remember]").forEach(function (details) {
      if (details.dataset.rememberReady) return;
      details.dataset.rememberReady = "1";
      var key = "fangan-open-" + details.dataset.remember;
      try { if (sessionStorage.getItem(key) === "1") details.open = true; } catch (e) { /* storage refused */ }
      details.addEventListener("toggle", function () {
        try { sessionStorage.setItem(key, details.open ? "1" : "0"); } catch (e) { /* storage refused */ }
        if (details.open) init(details);
      });
    });
    root.querySelectorAll("[data-map]").forEach(function (el) {
      if (el.dataset.mapReady || el.closest("details:not([open])")) return;
      try {
        build(el);
      } catch (e) {  // one map that cannot be drawn (a shape it cannot read) leaves the others be
        el.dataset.mapReady = "failed";
        if (window.console) console.warn("map", e);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
