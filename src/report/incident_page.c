#include "report/incident_page.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The page: the data is one JSON block (json-c escapes '/', so no "</"
 * can end the script early), drawn by the inline script with DOM calls
 * only (textContent: nothing from the target is ever parsed as HTML). */
static const char PAGE_HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>gilprobe incident</title>\n<style>\n"
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 40px;color:#222;background:#fff}\n"
    "h1{font-size:20px;margin:16px 0 4px}h2{font-size:16px;margin:24px 0 8px;"
    "border-bottom:1px solid #ddd}\n"
    ".meta{color:#555}.finding{border-left:4px solid #999;padding:4px 10px;margin:8px 0}\n"
    ".critical{border-color:#c0392b}.warning{border-color:#e67e22}.info{border-color:#2980b9}\n"
    ".advice{color:#333;margin-top:4px}.ev{font-family:monospace;color:#444}\n"
    "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;"
    "border-bottom:1px solid #eee}th{background:#f4f4f4}td:first-child,th:first-child{"
    "text-align:left}\n"
    "#flame{position:relative;font:11px monospace}#flame div.f{position:absolute;height:17px;"
    "overflow:hidden;white-space:nowrap;border:1px solid #fff;box-sizing:border-box;"
    "padding-left:2px;cursor:pointer}\n"
    "#tip{position:fixed;pointer-events:none;background:#333;color:#fff;padding:3px 6px;"
    "font:12px monospace;display:none;max-width:60%}\n"
    ".legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:10px;"
    "height:10px;margin-right:4px}\n"
    "</style></head><body>\n"
    "<h1 id=\"title\">gilprobe incident</h1><div class=\"meta\" id=\"meta\"></div>\n"
    "<h2>Diagnosis</h2><div id=\"diagnosis\"></div>\n"
    "<h2>Timeline</h2><div class=\"legend\" id=\"legend\"></div><div id=\"chart\"></div>\n"
    "<h2>Flame graph <small class=\"meta\">(by thread state; click to zoom, click the root "
    "to reset)</small></h2><div id=\"flame\"></div><div id=\"tip\"></div>\n"
    "<h2>Threads</h2><div id=\"threads\"></div>\n"
    "<div id=\"errors\"></div>\n"
    "<script>window.onerror=function(m){var e=document.getElementById('errors');"
    "e.textContent+='page error: '+m+'\\n';};</script>\n"
    "<script type=\"application/json\" id=\"data\">";

static const char PAGE_TAIL[] =
    "</script>\n<script>\n"
    "'use strict';\n"
    "const D=JSON.parse(document.getElementById('data').textContent);\n"
    "const R=D.report,T=D.timeline,S=D.stacks||[];\n"
    "const NS='http://www.w3.org/2000/svg';\n"
    "function el(tag,cls,text,parent){const e=document.createElement(tag);if(cls)e.className=cls;"
    "if(text!==undefined&&text!==null)e.textContent=String(text);if(parent)parent.appendChild(e);"
    "return e;}\n"
    "function sv(tag,attrs,parent){const e=document.createElementNS(NS,tag);for(const k in attrs)"
    "e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}\n"
    "function fmt(v,d){return v===null||v===undefined?'-':(+v).toFixed(d===undefined?1:d);}\n"
    /* header */
    "(function(){const py=R.python||{},tr=R.triggers;\n"
    " document.getElementById('title').textContent=tr?'gilprobe incident: '+tr.map(t=>t.expr)"
    ".join(', '):'gilprobe report';\n"
    " const m=document.getElementById('meta');\n"
    " el('div',null,'PID '+R.pid+(R.cmdline?'  '+R.cmdline:''),m);\n"
    " el('div',null,'Python '+(py.version||'?')+'   window '+fmt((R.run||{}).duration_s)+' s'"
    "+(tr?'   fired at '+tr.map(t=>t.at+' ('+t.measured+')').join(', '):''),m);})();\n"
    /* diagnosis */
    "(function(){const d=document.getElementById('diagnosis'),f=R.findings||[];\n"
    " if(!f.length)el('p',null,'No known contention pattern found.',d);\n"
    " for(const x of f){const b=el('div','finding '+x.severity,null,d);\n"
    "  el('b',null,x.scenario+' ['+x.severity+'] '+x.title,b);\n"
    "  if(x.verdict)el('div',null,x.verdict,b);\n"
    "  if(x.culprit)el('div',null,'Culprit: '+x.culprit,b);\n"
    "  for(const e of x.evidence||[])el('div','ev',e.metric+' = '+fmt(e.value,2)+' ('+e.op+' '+"
    "fmt(e.threshold,2)+')',b);\n"
    "  if(x.advice)el('div','advice','What to do: '+x.advice,b);}})();\n"
    /* timeline chart */
    "(function(){const c=document.getElementById('chart'),lg=document.getElementById('legend');\n"
    " const pts=(T&&T.seconds)||[];if(!pts.length){el('p',null,'No timeline (a one-shot report)"
    ".',c);return;}\n"
    " const W=900,H=220,L=40,B=20,t0=pts[0].t,t1=pts[pts.length-1].t||t0+1;\n"
    " const svg=sv('svg',{width:W,height:H,viewBox:'0 0 '+W+' '+H,id:'timeline-svg'},c);\n"
    " const x=t=>L+(W-L-10)*(t-t0)/Math.max(t1-t0,1);\n"
    " const series=[['held %','held_pct','#c0392b',1],['waiters (mean) x10','waiters_mean',"
    "'#8e44ad',10],['exact wait p99 ms','wait_p99_ms','#27ae60',1],['loop stall max ms / 5',"
    "'loop_stall_max_ms','#2980b9',0.2]];\n"
    " let top=100;for(const s of series)for(const p of pts)top=Math.max(top,(p[s[1]]||0)*s[3]);\n"
    " const y=v=>H-B-(H-B-10)*Math.min(v,top)/top;\n"
    " sv('line',{x1:L,y1:H-B,x2:W-10,y2:H-B,stroke:'#999'},svg);sv('line',{x1:L,y1:10,x2:L,"
    "y2:H-B,stroke:'#999'},svg);\n"
    " for(const v of [0,top/2,top]){const t=sv('text',{x:2,y:y(v)+4,'font-size':10},svg);"
    "t.textContent=v.toFixed(0);}\n"
    " for(const s of series){const d=pts.map((p,i)=>(i?'L':'M')+x(p.t).toFixed(1)+' '+"
    "y((p[s[1]]||0)*s[3]).toFixed(1)).join(' ');\n"
    "  sv('path',{d:d,fill:'none',stroke:s[2],'stroke-width':1.5,'class':'series'},svg);\n"
    "  const l=el('span',null,null,lg);el('span','sw',null,l).style.background=s[2];"
    "l.appendChild(document.createTextNode(s[0]));}\n"
    " const inc=T.incident;if(inc&&inc.focus){const a=x(inc.focus.from),b=x(inc.focus.to);"
    "sv('rect',{x:a,y:10,width:Math.max(b-a,1),height:H-B-10,fill:'#f1c40f','fill-opacity':0.2,"
    "'class':'focus'},svg);}\n"
    " for(const m of T.marks||[]){const xm=x(m.t);sv('line',{x1:xm,y1:10,x2:xm,y2:H-B,"
    "stroke:'#000','stroke-dasharray':'4 3','class':'trigger-mark'},svg);\n"
    "  const t=sv('text',{x:xm>W-200?xm-3:xm+3,y:20,'font-size':11,'text-anchor':xm>W-200?'end':"
    "'start'},svg);t.textContent=m.label;}\n"
    " const tl=sv('text',{x:L,y:H-4,'font-size':10},svg);tl.textContent='seconds since the watch"
    " started: '+t0.toFixed(0)+' to '+t1.toFixed(0);})();\n"
    /* flame graph */
    "const COLORS={gil_held:'#e74c3c',gil_wait:'#f39c12',lock_wait:'#9b59b6',idle_wait:'#95a5a6',"
    "io_wait:'#3498db',sleep:'#bdc3c7',nogil_running:'#2ecc71',other:'#7f8c8d'};\n"
    "function node(name){return {name:name,value:0,kids:new Map()};}\n"
    "const root=node('all');\n"
    "for(const [state,thread,frames,count] of S){let n=root;n.value+=count;\n"
    " for(const name of [state,thread].concat(frames)){let k=n.kids.get(name);"
    "if(!k){k=node(name);k.state=state;n.kids.set(name,k);}k.value+=count;n=k;}}\n"
    "let focus=root;const fl=document.getElementById('flame'),tip=document.getElementById('tip');\n"
    "function draw(){fl.textContent='';const W=fl.clientWidth||900;let depth=0;\n"
    " function put(n,x,w,d){if(w<0.5)return;depth=Math.max(depth,d);const b=el('div','f',"
    "n===root?'all ('+root.value+' samples)':n.name,fl);\n"
    "  b.style.left=x+'px';b.style.width=w+'px';b.style.top=(d*18)+'px';"
    "b.style.background=n===root?'#ddd':(COLORS[n.state]||'#ccc');\n"
    "  b.dataset.name=n.name;b.dataset.value=n.value;\n"
    "  b.onmousemove=e=>{tip.style.display='block';tip.style.left=(e.clientX+12)+'px';"
    "tip.style.top=(e.clientY+12)+'px';tip.textContent=n.name+'  '+n.value+' samples ('+"
    "(100*n.value/Math.max(root.value,1)).toFixed(1)+'%)';};\n"
    "  b.onmouseleave=()=>{tip.style.display='none';};\n"
    "  b.onclick=()=>{focus=n===focus?root:n;draw();};\n"
    "  let cx=x;for(const k of [...n.kids.values()].sort((a,b)=>b.value-a.value)){"
    "const kw=w*k.value/Math.max(n.value,1);put(k,cx,kw,d+1);cx+=kw;}}\n"
    " if(focus===root)put(root,0,W,0);else{put(root,0,W,0);put(focus,0,W,1);}\n"
    " fl.style.height=((depth+1)*18+4)+'px';}\n"
    "draw();window.addEventListener('resize',draw);\n"
    /* threads */
    "(function(){const ths=R.threads||[];const t=el('table',null,null,"
    "document.getElementById('threads'));\n"
    " const h=el('tr',null,null,t);for(const c of ['thread','tid','samples','GIL held %','GIL "
    "wait %','lock wait %','I/O %','no-GIL running %','CPU %'])el('th',null,c,h);\n"
    " for(const x of ths){const r=el('tr',null,null,t);el('td',null,x.python_name||x.name,r);"
    "el('td',null,x.tid,r);el('td',null,x.samples,r);\n"
    "  for(const k of ['gil_held_pct','gil_wait_pct','lock_wait_pct','io_wait_pct',"
    "'nogil_running_pct','cpu_pct'])el('td',null,fmt(x[k]),r);}})();\n"
    "document.body.setAttribute('data-rendered','1');\n"
    "</script>\n</body></html>\n";

static json_object *frames_list(const struct stack_entry *e)
{
    json_object *a = json_object_new_array();
    for (int f = e ? e->nframes - 1 : -1; f >= 0; f--) {
        const struct py_frame *pf = &e->frames[f];
        char buf[512];
        if (pf->line >= 0)
            snprintf(buf, sizeof buf, "%s (%s:%d)", pf->code->name, pf->code->filename, pf->line);
        else
            snprintf(buf, sizeof buf, "%s (%s)", pf->code->name, pf->code->filename);
        json_object_array_add(a, json_object_new_string(buf));
    }
    return a;
}

/* [[state, thread, [outermost .. innermost], count], ...] */
static json_object *stacks_json(const struct run_metrics *m)
{
    json_object *a = json_object_new_array();
    for (uint32_t i = 0; i < m->nthreads; i++) {
        const struct thread_metrics *t = &m->threads[i];
        char label[THREAD_NAME_MAX + 80];
        snprintf(label, sizeof label, "%s (%d)", t->display[0] ? t->display : t->name, (int)t->tid);
        for (int kind = 0; kind < TS_COUNT; kind++) {
            const struct stack_counts *c = &t->stacks[kind];
            for (uint32_t j = 0; j < c->n; j++) {
                json_object *row = json_object_new_array();
                json_object_array_add(row, json_object_new_string(tstate_kind_key(kind)));
                json_object_array_add(row, json_object_new_string(label));
                json_object_array_add(row, frames_list(stack_table_get(&m->stacks, c->ids[j])));
                json_object_array_add(row, json_object_new_int64((int64_t)c->counts[j]));
                json_object_array_add(a, row);
            }
        }
    }
    return a;
}

int report_incident_page(const char *path, json_object *report, json_object *timeline,
                         const struct run_metrics *m, struct gp_error *err)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "report", json_object_get(report));
    json_object_object_add(data, "timeline", timeline ? json_object_get(timeline) : NULL);
    json_object_object_add(data, "stacks", stacks_json(m));
    /* Plain, and '/' escaped (json-c's default): "</script>" in a frame
     * name cannot close the data block. */
    const char *text = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);
    FILE *out = fopen(path, "we");
    int ok = out != NULL;
    if (ok) {
        ok = fputs(PAGE_HEAD, out) >= 0 && text && fputs(text, out) >= 0 &&
             fputs(PAGE_TAIL, out) >= 0;
        ok = fflush(out) == 0 && !ferror(out) && ok;
        ok = fclose(out) == 0 && ok;
    }
    json_object_put(data);
    if (!ok) {
        gp_error_set(err, GP_ERR_OUTPUT, "cannot write %s: %s; choose a writable path", path,
                     strerror(errno ? errno : EIO));
        return err->code;
    }
    return GP_OK;
}
