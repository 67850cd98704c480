"""What a person would see wrong on the page, measured in the browser (for tests/test_page_fit.py): each
check is a script returning one line per problem on the tab shown, so a failure lists them all."""

# Words are what a browser may not split: broken only at spaces and after hyphens.
BROKEN_WORDS = """() => {
  const found = [];
  for (const grid of document.querySelectorAll('[role=grid]')) {
    if (!grid.offsetParent) continue;  // on a hidden tab
    const name = grid.closest('[id]')?.id || 'a table';
    for (const span of grid.querySelectorAll('span.text')) {
      const node = span.firstChild;
      if (!node || node.nodeType !== Node.TEXT_NODE) continue;
      // What shows of a cell's text: its wrapper's box, narrowed by every box between the text and its table
      // cell that clips (a header's text sits in an overflow-hidden box narrower than the wrapper: "Augment"
      // lost its last letters there while the wrapper had room).
      const cell = span.closest('.cell-wrap'), boxes = [cell.getBoundingClientRect()];
      for (let e = span.parentElement; e && e !== cell; e = e.parentElement)
        if (getComputedStyle(e).overflowX !== 'visible') boxes.push(e.getBoundingClientRect());
      const left = Math.max(...boxes.map(b => b.left)) - 1, right = Math.min(...boxes.map(b => b.right)) + 1;
      for (const match of node.data.matchAll(/[^\\s-]+-?/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const rects = [...range.getClientRects()].filter(r => r.width > 0);
        if (new Set(rects.map(r => Math.round(r.top))).size > 1 || rects.some(r => r.right > right || r.left < left))
          found.push(`${name}: "${match[0]}" split or cut in "${node.data}"`);
      }
    }
  }
  return found;
}"""

# Text on a figure must be whole and not sit on other text or on a plot it does not belong to: titles inside
# the figure, axis titles clear of every plot area, legends outside them, labels on bars clear of error bars.
PLOT_OVERLAPS = """() => {
  const found = [], box = e => e.getBoundingClientRect();
  const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const say = e => (e.textContent || e.getAttribute('class') || '').trim().slice(0, 40);
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!plot.offsetParent) continue;
    const name = plot.closest('[id]')?.id || plot.querySelector('.gtitle')?.textContent || 'a figure';
    const areas = [...plot.querySelectorAll('.nsewdrag')];
    const titles = [...plot.querySelectorAll('g[class^="g-"][class$="title"] text')].filter(t => t.textContent.trim());
    const notes = [...plot.querySelectorAll('.annotation-text-g text')].filter(t => t.textContent.trim());
    const texts = [...titles, ...notes], frame = box(plot.querySelector('.main-svg'));
    for (const t of texts) { const b = box(t);
      if (b.left < frame.left - 1 || b.right > frame.right + 1) found.push(`${name}: "${say(t)}" cut off`); }
    texts.forEach((a, i) => texts.slice(i + 1).forEach(b => {
      if (hit(box(a), box(b))) found.push(`${name}: "${say(a)}" on "${say(b)}"`); }));
    for (const t of titles.filter(t => !t.closest('.g-gtitle')))
      for (const area of areas) if (hit(box(t), box(area))) found.push(`${name}: "${say(t)}" on a plot`);
    for (const legend of plot.querySelectorAll('.legend .bg'))
      for (const area of areas) if (hit(box(legend), box(area))) found.push(`${name}: the legend on a plot`);
    for (const label of plot.querySelectorAll('.bartext'))
      for (const bar of plot.querySelectorAll('.errorbar path'))
        if (hit(box(label), box(bar))) found.push(`${name}: "${say(label)}" on an error bar`);
  }
  return found;
}"""

# Nothing larger than its place: the page (no sideways scrolling), a table's rows (the jobs: all of them
# shown), a gallery caption.
OVERFLOWS = """() => {
  const found = [], shown = [...document.querySelectorAll('.virtual-table-viewport, .caption-label')]
    .filter(e => e.offsetParent);
  const page = document.scrollingElement;
  if (page.scrollWidth > innerWidth) found.push(`the page is ${page.scrollWidth} px wide in a ${innerWidth} px window`);
  for (const e of shown) {
    const name = e.closest('[id]')?.id || e.className;
    if (e.scrollWidth > e.clientWidth + 1) found.push(`${name}: ${e.scrollWidth} px of content in ${e.clientWidth} px`);
    if (e.matches('.caption-label') && e.scrollHeight > e.clientHeight + 1) found.push(`${name}: "${e.innerText}" cut`);
    if (name.endsWith('jobs-table') && e.scrollHeight > e.clientHeight + 1) found.push(`${name}: rows cut off`);
  }
  return found;
}"""


def problems(page) -> list:
    return [line for script in (BROKEN_WORDS, PLOT_OVERLAPS, OVERFLOWS) for line in page.evaluate(script)]
